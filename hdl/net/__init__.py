"""Network layer pieces: header layouts and Internet checksums."""
