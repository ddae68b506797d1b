"""pushlane's local stack: `sam local` without Docker.

moto plays AWS (the stack is created from template.yaml itself), DynamoDB Local plays DynamoDB when Java is
here, a WSGI gateway plays API Gateway HTTP API, pollers play Lambda's SQS event source mappings, and every
function runs in execution environments of its own. Modules:

- ``template``: reads the SAM template into functions, routes and SQS sources.
- ``stack``: creates the transformed stack with moto's CloudFormation (in-process or server mode).
- ``provisioning``: does that in a throwaway child, then makes its queues and tables for the running stack.
- ``dynamodb_local``: starts DynamoDB Local on loopback (or says why moto stands in).
- ``environments``, ``environment_worker``, ``environment_factory``: execution environments, one event at a
  time each, forked from a zygote that preloaded the shared libraries and layers.
- ``runtime``: the Lambda Python runtime's contract (context, results, errors).
- ``gateway``: routes HTTP requests to handlers as payload v2.0 events.
- ``poller``: feeds SQS messages to handlers with partial-batch-failure semantics.
- ``emulated_providers``: the APNs, FCM, Web Push and webhook emulators beside the stack.
- ``launcher``: starts and stops all of it against a moto server.
- ``__main__``: ``python -m dev.local_stack``.
"""
