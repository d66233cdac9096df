"""The HTTP APIs served by the web stage."""
