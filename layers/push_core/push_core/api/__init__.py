"""The native HTTP API (/v1): Powertools routers, schemas and the one place errors become responses."""
