"""pushlane's shared layer: domain, the delivery pipeline, storage, providers and the HTTP API routes."""
