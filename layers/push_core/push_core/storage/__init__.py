"""DynamoDB access, one module per kind of item; every key an API call touches starts with the app."""
