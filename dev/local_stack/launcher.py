"""Start and stop the whole local stack: a moto server as AWS, the stack, handlers, pollers, the gateway.

Everything listens on loopback unless told otherwise: moto always does, the
gateway on the host it is given.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from dev.local_stack import dynamodb_local, fair_queues, moto_atomicity, moto_memory
from dev.local_stack.environments import (
    DEFAULT_CONCURRENCY,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_QUEUE_CONCURRENCY,
    ExecutionEnvironments,
    environments_for_stack,
)
from dev.local_stack.gateway import Gateway, RunningServer, serve
from dev.local_stack.poller import SqsEventSourcePoller, event_source_pollers, stop_all
from dev.local_stack.provisioning import provision
from dev.local_stack.runtime import Invocable
from dev.local_stack.stack import DeployedStack
from dev.local_stack.template import SamApp

MOTO_HOST = "127.0.0.1"

# Credentials moto accepts, and no profile or config file that could point boto3 at a real account.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
# No X-Ray daemon or CloudWatch locally; these beat the template's values, which win for everything else.
LOCAL_ENV_OVERRIDES = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# The served stack shows Powertools metrics: EMF on each environment's stdout, totals at GET /_local/metrics.
SERVED_ENV_OVERRIDES = {**LOCAL_ENV_OVERRIDES, "POWERTOOLS_METRICS_DISABLED": "false"}
_REAL_ACCOUNT_VARIABLES = frozenset({"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"})


def use_fake_aws_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Point this process's AWS configuration at nothing real (moto's endpoint is added by ``start``)."""
    for name in list(environ):
        # AWS_ENDPOINT_URL_<SERVICE> would send that service somewhere other than moto.
        if name in _REAL_ACCOUNT_VARIABLES or name.startswith("AWS_ENDPOINT_URL"):
            del environ[name]
    environ.update(FAKE_AWS_ENVIRONMENT)
    environ.update(LOCAL_ENV_OVERRIDES)


def port_is_free(host: str, port: int) -> bool:
    """Whether host:port can be listened on now (port 0 always can)."""
    if port == 0:
        return True
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option the servers set, so a port in TIME_WAIT counts as free, as it is for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class LocalStack:
    """The running pieces, to print and to stop."""

    app: SamApp
    stack: DeployedStack
    functions: Mapping[str, Invocable]
    environments: ExecutionEnvironments
    pollers: list[SqsEventSourcePoller]
    gateway: RunningServer
    moto: ThreadedMotoServer
    moto_url: str
    dynamodb: dynamodb_local.Selection  # DynamoDB Local, or moto

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self.gateway.url

    def stop(self) -> None:
        """Stop the pollers, then the gateway, then moto and DynamoDB Local."""
        for poller in self.pollers:
            poller.request_stop()
        self.gateway.shutdown()
        self.environments.stop()  # ends invocations in flight, so the pollers need not wait them out
        stop_all(self.pollers)
        self.moto.stop()
        self.dynamodb.stop()


def start_moto(port: int = 0) -> tuple[ThreadedMotoServer, str]:
    """A moto server on loopback; sets AWS_ENDPOINT_URL so every boto3 client built from now on uses it."""
    if not port_is_free(MOTO_HOST, port):
        # ThreadedMotoServer.start() would wait forever for a server that failed to bind.
        raise OSError(f"{MOTO_HOST}:{port} is already in use")
    fair_queues.install()  # pushlane's queues are fair queues on AWS; moto has none
    moto_atomicity.install()  # its DynamoDB is not thread-safe; the server answers requests on threads
    moto_memory.install()  # its SQS would remember every deleted message for good
    moto = ThreadedMotoServer(ip_address=MOTO_HOST, port=port, verbose=False)
    moto.start()
    url = f"http://{MOTO_HOST}:{moto.get_host_and_port()[1]}"
    os.environ["AWS_ENDPOINT_URL"] = url
    return moto, url


def start(
    app: SamApp,
    parameters: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 3000,
    moto_port: int = 0,
    stack_name: str = "pushlane",
    dynamodb: str = "moto",
    concurrency: int = DEFAULT_CONCURRENCY,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    queue_concurrency: int = DEFAULT_QUEUE_CONCURRENCY,
) -> LocalStack:
    """Start moto, create the stack, load the handlers, start the pollers and serve the gateway.

    ``dynamodb`` is a ``dynamodb_local.CHOICES`` value: with DynamoDB Local, the tables are created
    there and AWS_ENDPOINT_URL_DYNAMODB sends DynamoDB to it; moto serves the other services.
    Expects ``use_fake_aws_environment`` to have run. Raises OSError when a port
    cannot be bound, DynamoDBLocalError when DynamoDB Local was asked for and did not start,
    after stopping whatever had started.

    Each function runs in execution environments of its own (``dev.local_stack.environments``):
    at most its reserved concurrency, else ``concurrency``, at once; idle ones end after
    ``idle_timeout_s``. SQS pollers run as many batches side by side as that limit, at most the
    event's ScalingConfig.MaximumConcurrency, else ``queue_concurrency``.
    """
    moto, moto_url = start_moto(moto_port)
    try:
        database = dynamodb_local.select(dynamodb)
    except BaseException:
        moto.stop()
        raise
    if database.endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = database.endpoint  # for this process and the handlers'
    else:
        os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    try:
        stack = provision(app, parameters, stack_name, dynamodb_endpoint=database.endpoint)
        environments = environments_for_stack(
            app, stack, SERVED_ENV_OVERRIDES, concurrency=concurrency, idle_timeout_s=idle_timeout_s
        )
        functions = environments.functions
        limits = {name: pool.limit for name, pool in functions.items()}
        pollers = event_source_pollers(app, stack, functions, limits, queue_concurrency)
        local_endpoints = {
            "/_local/metrics": environments.metrics.snapshot,
            "/_local/environments": environments.describe,
        }
        gateway = serve(Gateway(app.routes, functions, local_endpoints=local_endpoints), host, port)
    except BaseException:
        moto.stop()
        database.stop()
        raise
    environments.start()
    for poller in pollers:
        poller.start()
    return LocalStack(
        app=app,
        stack=stack,
        functions=functions,
        environments=environments,
        pollers=pollers,
        gateway=gateway,
        moto=moto,
        moto_url=moto_url,
        dynamodb=database,
    )
