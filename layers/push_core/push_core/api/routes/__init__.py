"""One module per group of routes; each Lambda function includes the routers it serves."""
