"""A multi-user soak on the local stack: 8 clients of 4 apps doing everything at once for about a minute.

Each client owns inbox devices of its app and, in a loop, registers another device, subscribes it,
publishes to its own topic, long-polls and confirms on its devices, reads its publications' reports and
its app, and rotates the app's public key. Every answer is checked against what the client knows is its
own: no 5xx ever, no id, name or message of another app or another client, and at the end every
publication is `completed` with counters equal to the devices that were subscribed when it was sent.
Loopback only, bounded in time (SOAK_SECONDS) and in count.
"""

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.e2e.conftest import Api, RunningStack

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
APPS = 4
CLIENTS_PER_APP = 2
MAX_DEVICES_PER_CLIENT = 6
COMPLETION_TIMEOUT_S = 90


@dataclass
class Client:
    """One user of one app: what it created, so every answer can be checked against it."""

    name: str
    app: dict[str, str]
    topic: str
    devices: dict[str, str] = field(default_factory=dict)  # device id -> device key
    publications: dict[str, int] = field(default_factory=dict)  # publication id -> devices subscribed then
    received: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    requests: int = 0


class SoakRun:
    def __init__(self, url: str) -> None:
        self.url = url
        self.app_locks: dict[str, threading.Lock] = {}

    def call(self, session: requests.Session, client: Client, method: str, path: str, key: str, **kwargs: Any):
        client.requests += 1
        reply = session.request(
            method, self.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=60, **kwargs
        )
        if reply.status_code >= 500:
            client.problems.append(f"{method} {path}: {reply.status_code} {reply.text[:200]}")
        return reply

    def step(self, session: requests.Session, client: Client, round_: int) -> None:
        app = client.app
        if len(client.devices) < MAX_DEVICES_PER_CLIENT:
            token = f"{client.name}-device-{round_}"
            reply = self.call(
                session, client, "POST", "/v1/devices", app["public"], json={"platform": "inbox", "token": token}
            )
            if reply.status_code == 201:
                device = reply.json()
                device_id = device["device"]["id"]
                subscribed = self.call(
                    session, client, "PUT", f"/v1/devices/{device_id}/topics/{client.topic}", device["device_key"]
                )
                if subscribed.status_code == 201:
                    client.devices[device_id] = device["device_key"]
            elif reply.status_code != 401:  # the public key may have just been rotated by the other client
                client.problems.append(f"register: {reply.status_code} {reply.text[:200]}")
        # Publish to the client's own topic: only its devices are subscribed to it.
        body = f"{client.name}:{round_}"
        published = self.call(
            session, client, "POST", "/v1/messages", app["secret"], json={"topics": [client.topic], "body": body}
        )
        if published.status_code == 202:
            client.publications[published.json()["id"]] = len(client.devices)
        else:
            client.problems.append(f"publish: {published.status_code} {published.text[:200]}")
        for device_id, device_key in list(client.devices.items())[: 1 + round_ % 3]:
            polled = self.call(session, client, "GET", f"/v1/devices/{device_id}/messages?wait=1", device_key)
            if polled.status_code != 200:
                client.problems.append(f"poll: {polled.status_code} {polled.text[:200]}")
                continue
            messages = polled.json()["messages"]
            for message in messages:
                if not message["body"].startswith(client.name + ":"):
                    client.problems.append(f"device {device_id} of {client.name} got {message['body']!r}")
                client.received.add(message["id"])
            if messages:
                ids = [m["id"] for m in messages]
                confirmed = self.call(
                    session, client, "POST", f"/v1/devices/{device_id}/messages/confirm", device_key, json={"ids": ids}
                )
                if confirmed.status_code != 200:
                    client.problems.append(f"confirm: {confirmed.status_code} {confirmed.text[:200]}")
        for publication_id in list(client.publications)[-2:]:
            report = self.call(session, client, "GET", f"/v1/messages/{publication_id}", app["secret"])
            if report.status_code != 200 or report.json()["id"] != publication_id:
                client.problems.append(f"report {publication_id}: {report.status_code} {report.text[:200]}")
            elif report.json()["topics"] != [client.topic]:
                client.problems.append(f"report {publication_id} names topics {report.json()['topics']}")
        seen = self.call(session, client, "GET", f"/v1/apps/{app['id']}", app["secret"])
        if seen.status_code != 200 or seen.json()["name"] != app["name"]:
            client.problems.append(f"app read as {seen.status_code} {seen.text[:200]}")
        if round_ % 5 == 4:
            self.rotate_public_key(session, client)

    def rotate_public_key(self, session: requests.Session, client: Client) -> None:
        """Issue a new public key, then revoke the old one (the two clients of an app take turns)."""
        app = client.app
        with self.app_locks[app["id"]]:
            issued = self.call(
                session, client, "POST", f"/v1/apps/{app['id']}/keys", app["secret"], json={"role": "public"}
            )
            if issued.status_code != 201:
                client.problems.append(f"rotate: {issued.status_code} {issued.text[:200]}")
                return
            old_id = app["public"].split("_")[2]
            revoked = self.call(session, client, "DELETE", f"/v1/apps/{app['id']}/keys/{old_id}", app["secret"])
            if revoked.status_code != 204:
                client.problems.append(f"revoke: {revoked.status_code} {revoked.text[:200]}")
            app["public"] = issued.json()["key"]

    def run_client(self, client: Client, deadline: float) -> None:
        with requests.Session() as session:
            session.trust_env = False
            round_ = 0
            try:
                while time.monotonic() < deadline:
                    self.step(session, client, round_)
                    round_ += 1
            except Exception as error:  # noqa: BLE001 - a dead client thread would otherwise only warn
                client.problems.append(f"round {round_}: {error!r}")


def test_eight_clients_of_four_apps_share_the_stack_without_a_5xx_or_a_leak(stack: RunningStack, http: Api):
    run = SoakRun(stack.url)
    clients: list[Client] = []
    for a in range(APPS):
        name = f"soak-app-{a}-{time.monotonic_ns()}"
        created = http.call("POST", "/v1/apps", http.admin_key, json={"name": name}).json()
        app = {
            "id": created["app"]["id"],
            "name": name,
            "secret": created["secret_key"]["key"],
            "public": created["public_key"]["key"],
        }
        run.app_locks[app["id"]] = threading.Lock()
        clients += [Client(name=f"a{a}c{c}", app=app, topic=f"soak-{a}-{c}") for c in range(CLIENTS_PER_APP)]

    started = time.monotonic()
    threads = [threading.Thread(target=run.run_client, args=(c, started + SOAK_SECONDS)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SOAK_SECONDS + 120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"

    # Every publication completes with counters equal to the devices it reached.
    deadline = time.monotonic() + COMPLETION_TIMEOUT_S
    for client in clients:
        for publication_id, expected in client.publications.items():
            while True:
                report = http.call("GET", f"/v1/messages/{publication_id}", client.app["secret"]).json()
                if report["status"] == "completed" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            counted = (report["status"], report["total"], report["passed"], report["failed"], report["pending"])
            # A device registered while the publication was in flight may or may not be counted.
            if counted[0] != "completed" or counted[3:] != (0, 0) or counted[1] != counted[2]:
                client.problems.append(f"publication {publication_id}: {counted}")
            elif not expected <= report["total"] <= MAX_DEVICES_PER_CLIENT:
                client.problems.append(f"publication {publication_id}: total {report['total']}, expected {expected}")

    requests_sent = sum(c.requests for c in clients)
    publications = sum(len(c.publications) for c in clients)
    print(
        f"\nsoak: {len(clients)} clients, {requests_sent} requests, {publications} publications, "
        f"{sum(len(c.received) for c in clients)} messages received in {time.monotonic() - started:.0f} s"
    )
    problems = [f"{c.name}: {p}" for c in clients for p in c.problems]
    assert problems == []
    assert publications >= len(clients)
    assert all(client.publications for client in clients)  # every client got work done
