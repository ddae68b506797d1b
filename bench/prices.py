"""AWS prices the cost model uses: us-east-1, arm64, on-demand, as published for 2026 (checked 2026-11-23)."""

PRICES_DATE = "2026-11-23"
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND_ARM64 = 0.0000133334
SQS_PER_REQUEST = 0.40 / 1_000_000  # standard queue; every 64 KB of payload is one request
DYNAMODB_PER_READ_UNIT = 0.125 / 1_000_000
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1_000_000
SECRETS_MANAGER_PER_REQUEST = 0.05 / 10_000  # GetSecretValue; each delivering environment reads the credentials
CLOUDWATCH_LOGS_PER_GB = 0.50  # standard log ingestion (Lambda's own lines and Powertools' metrics go there)
XRAY_PER_TRACE = 5.00 / 1_000_000  # traces recorded; the template turns Active tracing on
SNS_MOBILE_PUSH_PER_DELIVERY = 0.50 / 1_000_000  # what pushlane replaces
