"""Traffic generation: rate scheduler with profiles, and the UDP frame generator."""
