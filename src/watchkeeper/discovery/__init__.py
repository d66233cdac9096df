"""Service discovery: turns configs into streams of target groups."""
