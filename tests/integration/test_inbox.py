"""Poll and confirm: cursors, long-poll, confirmation counters."""

import threading
import time

from tests.integration.harness import LocalAws


def test_poll_pages_with_a_cursor_oldest_first(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, ["t"])
    ids = [aws.publish(app, topics=["t"], body=f"m{i}") for i in range(5)]
    aws.drain()

    first = aws.poll(device, "?limit=2")
    second = aws.poll(device, f"?limit=2&cursor={first['cursor']}")
    third = aws.poll(device, f"?limit=2&cursor={second['cursor']}")
    seen = [m["id"] for page in (first, second, third) for m in page["messages"]]
    assert seen == ids
    assert aws.poll(device, f"?cursor={third['cursor']}") == {"messages": [], "cursor": third["cursor"]}


def test_confirm_counts_once_and_hides_the_message(aws: LocalAws):
    app = aws.new_app()
    device, other = aws.new_device(app, ["t"]), aws.new_device(app, ["t"])
    message_id = aws.publish(app, topics=["t"])
    aws.drain()
    path = f"/v1/devices/{device['id']}/messages/confirm"

    assert aws.http("POST", path, device["key"], {"ids": [message_id]}).body == {"confirmed": 1}
    assert aws.http("POST", path, device["key"], {"ids": [message_id]}).body == {"confirmed": 0}
    assert aws.poll(device)["messages"] == []
    assert len(aws.poll(other)["messages"]) == 1
    report = aws.publication(app, message_id)
    assert (report["passed"], report["confirmed"]) == (2, 1)


def test_confirm_up_to_clears_everything_before_and_including(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, ["t"])
    ids = [aws.publish(app, topics=["t"]) for _ in range(4)]
    aws.drain()
    reply = aws.http("POST", f"/v1/devices/{device['id']}/messages/confirm", device["key"], {"up_to": ids[2]})
    assert reply.body == {"confirmed": 3}
    assert [m["id"] for m in aws.poll(device)["messages"]] == [ids[3]]
    assert [aws.publication(app, i)["confirmed"] for i in ids] == [1, 1, 1, 0]


def test_confirm_rejects_ids_that_are_not_message_ids(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app)
    reply = aws.http("POST", f"/v1/devices/{device['id']}/messages/confirm", device["key"], {"ids": ["nope"]})
    assert reply.status == 422


def test_long_poll_returns_as_soon_as_a_message_arrives(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app, ["live"])
    result: dict[str, object] = {}

    def wait_for_message() -> None:
        started = time.monotonic()
        result["page"] = aws.poll(device, "?wait=10")
        result["seconds"] = time.monotonic() - started

    waiter = threading.Thread(target=wait_for_message)
    waiter.start()
    time.sleep(0.5)
    message_id = aws.publish(app, topics=["live"])
    aws.drain()
    waiter.join(timeout=15)

    assert [m["id"] for m in result["page"]["messages"]] == [message_id]  # type: ignore[index]
    assert result["seconds"] < 8  # type: ignore[operator]


def test_long_poll_with_nothing_waits_then_answers_empty(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app)
    started = time.monotonic()
    assert aws.poll(device, "?wait=1")["messages"] == []
    assert time.monotonic() - started >= 1
    assert aws.http("GET", f"/v1/devices/{device['id']}/messages?wait=21", device["key"]).status == 422
