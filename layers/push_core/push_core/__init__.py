"""pushlane's shared layer: domain, storage, queueing, delivery and the HTTP API routes."""
