"""The receive side above the MAC: parser, tracker, histograms, records, responders."""
