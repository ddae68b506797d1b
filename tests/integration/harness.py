"""In-process pushlane on moto: the stack built from template.yaml, real handlers behind the real routes."""

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws
from werkzeug.test import Client

from dev.local_stack.emulated_providers import EmulatedProviders, start_emulators
from dev.local_stack.gateway import Gateway
from dev.local_stack.launcher import LOCAL_ENV_OVERRIDES, use_fake_aws_environment
from dev.local_stack.poller import SqsEventSourcePoller, drain, event_source_pollers
from dev.local_stack.runtime import LocalFunction, forget_container_state, load_functions
from dev.local_stack.stack import DeployedStack, deploy
from dev.local_stack.template import load_sam_app
from push_core.auth import sha256_hex
from tests.fixtures import sample_data

# Small pages make every publication in the tests span several expand jobs; a shard of at most two
# devices is delivered inline, larger ones through the delivery queue, so tests cross both paths.
TEST_PAGE_SIZE = "3"
TEST_INLINE_MAX = "2"


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LocalAws:
    stack: DeployedStack
    functions: dict[str, LocalFunction]
    pollers: list[SqsEventSourcePoller]
    client: Client
    providers: EmulatedProviders | None = None

    def http(
        self,
        method: str,
        path: str,
        key: str | None = None,
        json_body: Any = None,
        *,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A request through the gateway, routed by the template to the function that serves it."""
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        if json_body is not None:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        response = self.client.open(path, method=method, data=data, headers=sent)
        text = response.get_data(as_text=True)
        body = json.loads(text) if text and response.mimetype == "application/json" else text
        return Reply(response.status_code, body, dict(response.headers))

    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        """Invoke one function with an event, as `sam local invoke -e` would."""
        return self.functions[function].invoke(dict(event))

    def drain(self) -> None:
        """Run every SQS-triggered function until its queue is empty."""
        drain(self.pollers, timeout_s=60)

    def queue_depth(self, logical_id: str) -> int:
        """Messages in a queue, visible or in flight."""
        sqs = boto3.client("sqs")
        result = sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_urls[logical_id],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(result["ApproximateNumberOfMessages"]) + int(result["ApproximateNumberOfMessagesNotVisible"])

    # --- a few steps most tests take ---

    def new_app(self, name: str = "test app") -> dict[str, str]:
        reply = self.http("POST", "/v1/apps", sample_data.ADMIN_KEY, {"name": name})
        assert reply.status == 201, reply.body
        return {
            "id": reply.body["app"]["id"],
            "secret": reply.body["secret_key"]["key"],
            "public": reply.body["public_key"]["key"],
        }

    def new_device(self, app: Mapping[str, str], topics: Sequence[str] = (), **registration: Any) -> dict[str, str]:
        body = {"platform": "inbox", **registration}
        reply = self.http("POST", "/v1/devices", app["public"], body)
        assert reply.status in (200, 201), reply.body
        device = {"id": reply.body["device"]["id"], "key": reply.body["device_key"]}
        for topic in topics:
            sub = self.http("PUT", f"/v1/devices/{device['id']}/topics/{topic}", device["key"])
            assert sub.status == 201, sub.body
        return device

    def publish(self, app: Mapping[str, str], **message: Any) -> str:
        reply = self.http("POST", "/v1/messages", app["secret"], {"body": "hello", **message})
        assert reply.status == 202, reply.body
        return str(reply.body["id"])

    def publication(self, app: Mapping[str, str], message_id: str) -> dict[str, Any]:
        reply = self.http("GET", f"/v1/messages/{message_id}", app["secret"])
        assert reply.status == 200, reply.body
        return dict(reply.body)

    def poll(self, device: Mapping[str, str], query: str = "") -> dict[str, Any]:
        reply = self.http("GET", f"/v1/devices/{device['id']}/messages{query}", device["key"])
        assert reply.status == 200, reply.body
        return dict(reply.body)


@contextmanager
def local_aws(*, emulated_providers: bool = False, settings: Mapping[str, str] | None = None) -> Iterator[LocalAws]:
    """Deploy template.yaml into in-process moto and load the real handlers; undo it all afterwards.

    With emulated_providers, the loopback APNs/FCM/Web Push/webhook emulators run beside it and the
    template's provider parameters point at them, as `make run` does. settings are environment
    variables over the test defaults (EXPAND_PAGE_SIZE, JOB_MESSAGE_BYTES, ...).
    """
    saved = dict(os.environ)
    use_fake_aws_environment()
    forget_container_state()
    providers = start_emulators() if emulated_providers else None
    parameters = {
        "AdminKeySha256": sha256_hex(sample_data.ADMIN_KEY),
        **(providers.template_parameters() if providers else {}),
    }
    with mock_aws():
        try:
            app = load_sam_app(parameters=parameters)
            stack = deploy(app, parameters)
            functions = load_functions(
                app,
                stack,
                {
                    **LOCAL_ENV_OVERRIDES,
                    "EXPAND_PAGE_SIZE": TEST_PAGE_SIZE,
                    "INLINE_DELIVERY_MAX": TEST_INLINE_MAX,
                    **(settings or {}),
                },
            )
            pollers = event_source_pollers(app, stack, functions)
            client = Client(Gateway(app.routes, functions))
            yield LocalAws(stack=stack, functions=functions, pollers=pollers, client=client, providers=providers)
        finally:
            if providers:
                providers.stop()
            forget_container_state()
            os.environ.clear()
            os.environ.update(saved)
