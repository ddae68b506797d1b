"""webhook provider."""
