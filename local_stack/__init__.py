"""pushlane's local stack: `sam local` without Docker.

moto plays AWS (the stack is created from template.yaml itself), a WSGI gateway
plays API Gateway HTTP API, and pollers play Lambda's SQS event source mappings;
handlers run in this process. Modules:

- ``template``: reads the SAM template into functions, routes and SQS sources.
- ``stack``: creates the transformed stack in moto (in-process or server mode).
- ``runtime``: runs a function's handler the way the Lambda Python runtime does.
- ``gateway``: routes HTTP requests to handlers as payload v2.0 events.
- ``poller``: feeds SQS messages to handlers with partial-batch-failure semantics.
- ``launcher``: starts and stops all of it against a moto server.
- ``__main__``: ``python -m local_stack``.
"""
