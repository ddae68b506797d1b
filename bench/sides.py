"""One side of one comparison, run in its own process pinned to one core: prints a JSON result line.

Each side sends N notifications to the same emulator and reports the CPU seconds its own process spent
(time.process_time: the emulator runs in another process, so its CPU is not counted).
"""

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

Config = dict[str, Any]
# The device tokens every side sends to, by platform (Web Push sides cycle over the emulator's subscriptions).
TOKENS: dict[str, Callable[[int], str]] = {"apns": lambda i: f"{i:064x}", "fcm": lambda i: f"bench:token-{i:08d}"}
TITLE, BODY = "Flash sale", "Everything is 20% off for the next hour. Tap to see what is in your basket."


def _pin_to_one_core(config: Config) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(config["client_cpu"])})


def _measure(run: Callable[[], Counter[str]]) -> dict[str, Any]:
    profile_to = os.environ.get("BENCH_PROFILE")  # a path: write a cProfile of the measured part there
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = run()
    if profile_to:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{sys.argv[1]}")
    cpu_s, wall_s = time.process_time() - cpu, time.perf_counter() - wall
    sent = sum(outcomes.values())
    return {"notifications": sent, "cpu_s": cpu_s, "wall_s": wall_s, "per_cpu_s": sent / cpu_s, "outcomes": outcomes}


# --- pushlane: the real delivery path (DeliveryService → provider → HTTP/2), pages of 1,000 targets ---


def pushlane(config: Config, platform: str) -> dict[str, Any]:
    """pushlane's DeliveryService.deliver over pages, exactly as the fan-out calls it."""
    from push_core.config import Settings
    from push_core.models import InboxMessage, MessageContent, Platform, Target
    from push_core.pipeline.send import DeliveryService
    from push_core.providers.apns.auth import InMemoryTokenStore
    from push_core.providers.apns.credentials import ApnsCredentials
    from push_core.providers.fcm.credentials import FcmCredentials
    from push_core.providers.fcm.oauth import ServiceAccount
    from push_core.providers.pool import ProviderPool
    from push_core.providers.webpush.credentials import WebPushCredentials

    settings = Settings(
        table_name="unused",
        idempotency_table_name="unused",
        fanout_queue_url="unused",
        delivery_queue_url="unused",
        feedback_queue_url="unused",
        admin_key_sha256="0" * 64,
        apns_production_url=config["apns"]["url"],
        apns_sandbox_url=config["apns"]["url"],
        fcm_url=config["fcm"]["url"],
        webpush_allowed_hosts=("127.0.0.1",),
        provider_ca_bundle=config["ca_path"],
        allow_loopback_targets=True,
        max_in_flight=int(config["in_flight"]),
    )
    count = int(config["count"])
    creds: Any
    if platform == "apns":
        key = config["apns"]["key"]
        creds = ApnsCredentials(
            topic=key["topics"][0], team_id=key["team_id"], key_id=key["key_id"], private_key=key["private_key_pem"]
        )
        targets = [Target(device_id=f"d{i}", platform=Platform.APNS, token=TOKENS["apns"](i)) for i in range(count)]
    elif platform == "fcm":
        creds = FcmCredentials(service_account=ServiceAccount.model_validate(config["fcm"]["service_account"]))
        targets = [Target(device_id=f"d{i}", platform=Platform.FCM, token=TOKENS["fcm"](i)) for i in range(count)]
    else:
        creds = WebPushCredentials(
            subject="mailto:bench@example.com",
            vapid_private_key=config["vapid"]["private"],
            vapid_public_key=config["vapid"]["public"],
        )
        subscriptions = config["webpush"]["subscriptions"]
        targets = [
            Target(
                device_id=f"d{i}",
                platform=Platform.WEBPUSH,
                token=subscriptions[i % len(subscriptions)]["endpoint"],
                push=subscriptions[i % len(subscriptions)]["keys"],
            )
            for i in range(count)
        ]
    service = DeliveryService(ProviderPool(settings, token_store=InMemoryTokenStore(), load=lambda _app, _p: creds))
    message = InboxMessage(
        publication_id="01JD0000000000000000000MSG",
        content=MessageContent(title=TITLE, body=BODY, importance=4, data={"basket": "42"}),
        created_at=0,
    )
    page = 1000

    def run() -> Counter[str]:
        tally: Counter[str] = Counter()
        for start in range(0, count, page):
            report = service.deliver(
                "bench-app", message, targets[start : start + page], inbox_expires_at=0, final_attempt=True
            )
            tally["delivered"] += report.passed
            tally.update(report.failures)
        return tally

    return _measure(run)


# --- peers, each used the way its documentation shows ---


_credited: Counter[str] = Counter()


def credit_aioapns_flow_control() -> Callable[[], int]:
    """Give aioapns the HTTP/2 flow-control credit it never returns; returns how many bodies it has credited.

    aioapns 4.0 reads each response body (APNs sends one with every error) in
    ``APNsBaseClientProtocol.on_data_received`` and never acknowledges it, so the connection's receive
    window (65,535 bytes) runs out after ~2,500 error answers and every send after that waits forever.
    The credit is given back where aioapns reads the body; the count lets a test prove this code runs
    (an earlier version wrapped the base class's method, which aioapns overrides: it never ran).
    """
    from aioapns import connection

    protocol: Any = connection.APNsBaseClientProtocol
    if not getattr(protocol.on_data_received, "gives_credit", False):
        read_body = protocol.on_data_received

        def on_data_received(self: Any, raw_data: bytes, stream_id: int) -> None:
            try:
                read_body(self, raw_data, stream_id)
            finally:
                self.conn.acknowledge_received_data(len(raw_data), stream_id)
                _credited["bodies"] += 1

        on_data_received.gives_credit = True  # type: ignore[attr-defined]
        protocol.on_data_received = on_data_received
    return lambda: _credited["bodies"]


async def send_with_aioapns(config: Config, tokens: list[str]) -> Counter[str]:
    """One notification to each token through aioapns (one connection, ``in_flight`` sends at once)."""
    import ssl

    from aioapns import APNs, NotificationRequest
    from aioapns import connection as apns_connection

    host, port = config["apns"]["url"].removeprefix("https://").rsplit(":", 1)
    apns_connection.APNsProductionClientProtocol.APNS_SERVER = host
    apns_connection.APNsProductionClientProtocol.APNS_PORT = int(port)
    key = config["apns"]["key"]
    client = APNs(
        key=key["private_key_pem"],
        key_id=key["key_id"],
        team_id=key["team_id"],
        topic=key["topics"][0],
        max_connections=1,
        ssl_context=ssl.create_default_context(cafile=config["ca_path"]),
    )
    gate = asyncio.Semaphore(int(config["in_flight"]))
    tally: Counter[str] = Counter()

    async def one(token: str) -> None:
        async with gate:
            request = NotificationRequest(
                device_token=token,
                message={"aps": {"alert": {"title": TITLE, "body": BODY}, "sound": "default"}, "basket": "42"},
            )
            result = await client.send_notification(request)
            tally["delivered" if result.is_successful else str(result.description)] += 1

    await asyncio.gather(*(one(token) for token in tokens))
    return tally


def aioapns_peer(config: Config) -> dict[str, Any]:
    """aioapns 4.0 with one connection, with the flow-control credit it lacks (credit_aioapns_flow_control)."""
    credited = credit_aioapns_flow_control()
    tokens = [TOKENS["apns"](i) for i in range(int(config["count"]))]
    result = _measure(lambda: asyncio.run(send_with_aioapns(config, tokens)))
    return {**result, "flow_control_credits": credited()}


def firebase_app(config: Config, name: str = "[DEFAULT]") -> Any:
    """A firebase-admin app whose messaging service sends to the emulator."""
    import firebase_admin
    from firebase_admin import credentials, messaging

    messaging._MessagingService.FCM_URL = config["fcm"]["url"] + "/v1/projects/{0}/messages:send"
    account = config["fcm"]["service_account"]
    return firebase_admin.initialize_app(
        credentials.Certificate(account), {"projectId": account["project_id"]}, name=name
    )


def _firebase_batches(count: int) -> list[list[Any]]:
    """The messages in send_each's batches (it takes at most 500)."""
    from firebase_admin import messaging

    return [
        [
            messaging.Message(
                token=TOKENS["fcm"](i),
                notification=messaging.Notification(title=TITLE, body=BODY),
                data={"basket": "42"},
                android=messaging.AndroidConfig(priority="high"),
            )
            for i in range(start, min(count, start + 500))
        ]
        for start in range(0, count, 500)
    ]


def _firebase_tally(tally: Counter[str], response: Any) -> None:
    for item in response.responses:
        tally["delivered" if item.success else f"{type(item.exception).__name__}: {item.exception}"[:80]] += 1


def firebase_admin_peer(config: Config) -> dict[str, Any]:
    """firebase-admin 7's send_each (its own thread pool, HTTP/1.1 through requests), pointed at the emulator."""
    from firebase_admin import messaging

    app, count = firebase_app(config), int(config["count"])

    def run() -> Counter[str]:
        tally: Counter[str] = Counter()
        for batch in _firebase_batches(count):  # built inside the measured part: the peer's work too
            _firebase_tally(tally, messaging.send_each(batch, app=app))
        return tally

    return _measure(run)


_closed: Counter[str] = Counter()


def close_firebase_retried_responses() -> Callable[[], int]:
    """Close each response firebase-admin's async retry drops; returns how many it has closed.

    firebase-admin 7's ``HttpxRetryTransport`` retries a 500 or 503 and drops the failed response without
    closing it, which keeps that HTTP/2 stream open in httpx: once enough 503s have come back,
    ``send_each_async`` waits forever (5,000 sends with 2 % 503 never finish; with this, all are delivered).
    The response is closed where the retry is about to wait, the only place that sees it.
    """
    from firebase_admin import _retry

    retry: Any = _retry.HttpxRetry
    if not getattr(retry.sleep, "closes_response", False):
        wait = retry.sleep

        async def sleep(self: Any, response: Any) -> None:
            await response.aclose()
            _closed["responses"] += 1
            await wait(self, response)

        sleep.closes_response = True  # type: ignore[attr-defined]
        retry.sleep = sleep
    return lambda: _closed["responses"]


async def send_with_firebase_async(app: Any, count: int) -> Counter[str]:
    """``count`` messages through firebase-admin's send_each_async, 500 a call (its limit)."""
    from firebase_admin import messaging

    tally: Counter[str] = Counter()
    for batch in _firebase_batches(count):
        _firebase_tally(tally, await messaging.send_each_async(batch, app=app))
    return tally


def firebase_admin_async_peer(config: Config) -> dict[str, Any]:
    """firebase-admin 7's send_each_async (httpx over HTTP/2, one event loop), pointed at the emulator, with
    the retried responses closed (close_firebase_retried_responses)."""
    closed = close_firebase_retried_responses()
    app, count = firebase_app(config), int(config["count"])
    result = _measure(lambda: asyncio.run(send_with_firebase_async(app, count)))
    return {**result, "closed_retried_responses": closed()}


def pywebpush_peer(config: Config) -> dict[str, Any]:
    """pywebpush 2.5's webpush() with a shared requests session (its fastest documented use)."""
    import requests
    from pywebpush import WebPushException, webpush

    session = requests.Session()
    subscriptions = config["webpush"]["subscriptions"]
    count = int(config["count"])

    def run() -> Counter[str]:
        tally: Counter[str] = Counter()
        payload = json.dumps({"title": TITLE, "body": BODY, "data": {"basket": "42"}})
        for i in range(count):
            try:
                webpush(
                    subscriptions[i % len(subscriptions)],
                    data=payload,
                    vapid_private_key=config["vapid"]["private"],
                    vapid_claims={"sub": "mailto:bench@example.com"},
                    ttl=86400,
                    requests_session=session,
                )
            except WebPushException as error:  # what webpush() raises for any answer over 202
                tally[str(error.response.status_code if error.response is not None else error)] += 1
                continue
            tally["delivered"] += 1
        return tally

    return _measure(run)


def pywebpush_async_peer(config: Config) -> dict[str, Any]:
    """pywebpush 2.5's webpush_async with one shared aiohttp session and the VAPID headers signed once per
    push service origin (they are valid for 12 hours), ``in_flight`` sends at once."""
    from urllib.parse import urlsplit

    import aiohttp
    from py_vapid import Vapid
    from pywebpush import WebPushException, webpush_async

    subscriptions = config["webpush"]["subscriptions"]
    count, in_flight = int(config["count"]), int(config["in_flight"])
    vapid = Vapid.from_string(private_key=config["vapid"]["private"])
    payload = json.dumps({"title": TITLE, "body": BODY, "data": {"basket": "42"}})

    async def main() -> Counter[str]:
        tally: Counter[str] = Counter()
        signed: dict[str, dict[str, str]] = {}
        gate = asyncio.Semaphore(in_flight)

        async def one(session: aiohttp.ClientSession, subscription: dict[str, Any]) -> None:
            parts = urlsplit(subscription["endpoint"])
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in signed:
                signed[origin] = vapid.sign({"sub": "mailto:bench@example.com", "aud": origin})
            async with gate:
                try:
                    response = await webpush_async(
                        subscription, data=payload, headers=signed[origin], ttl=86400, aiohttp_session=session
                    )
                except WebPushException as error:
                    tally[str(error.response.status if error.response is not None else error)] += 1
                    return
                response.release()
                tally["delivered"] += 1

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(one(session, subscriptions[i % len(subscriptions)]) for i in range(count)))
        return tally

    return _measure(lambda: asyncio.run(main()))


SIDES: dict[str, Callable[[Config], dict[str, Any]]] = {
    "pushlane-apns": lambda c: pushlane(c, "apns"),
    "pushlane-fcm": lambda c: pushlane(c, "fcm"),
    "pushlane-webpush": lambda c: pushlane(c, "webpush"),
    "aioapns": aioapns_peer,
    "firebase-admin": firebase_admin_peer,
    "firebase-admin-async": firebase_admin_async_peer,
    "pywebpush": pywebpush_peer,
    "pywebpush-async": pywebpush_async_peer,
}


if __name__ == "__main__":
    side, config_path = sys.argv[1], sys.argv[2]
    with open(config_path) as handle:
        configuration = json.load(handle)
    _pin_to_one_core(configuration)
    print(json.dumps(SIDES[side](configuration)), flush=True)
