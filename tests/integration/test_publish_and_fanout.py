"""Publish → fan-out → inbox through the real handlers, routes and queues (moto, built from template.yaml)."""

import json

import pytest

from tests.integration.harness import TEST_PAGE_SIZE, LocalAws


def test_topic_publication_reaches_every_subscriber_once_across_pages(aws: LocalAws):
    # Given a topic with more subscribers than one expand page holds, spread over every shard
    app = aws.new_app()
    devices = [aws.new_device(app, ["storms"]) for _ in range(3 * int(TEST_PAGE_SIZE) + 2)]
    outsider = aws.new_device(app, ["sunshine"])

    # When a message is published and the fan-out queue is drained
    message_id = aws.publish(app, topics=["storms"], title="Storm", body="Gusts tonight", importance=5)
    assert aws.publication(app, message_id)["status"] == "queued"
    aws.drain()

    # Then every subscriber has it exactly once, the outsider nothing, and the counters agree
    for device in devices:
        messages = aws.poll(device)["messages"]
        assert [(m["id"], m["title"], m["importance"]) for m in messages] == [(message_id, "Storm", 5)]
    assert aws.poll(outsider)["messages"] == []
    report = aws.publication(app, message_id)
    used = report.pop("usage")
    # Usage is counted from the AWS calls themselves: a page Query per expand job, inbox writes, the
    # checkpoints of pages and delivery batches.
    jobs = used["fanout_jobs"]  # expand pages and delivery batches
    assert used["expand_jobs"] >= 1
    assert used["delivery_batches"] >= 1
    assert used["expand_jobs"] + used["delivery_batches"] == jobs
    assert jobs >= len(devices) // int(TEST_PAGE_SIZE)
    assert used["dynamodb_read_units"] >= jobs * 0.5
    # Every job writes a checkpoint transaction (4 units) and its inbox items (moto reports a BatchWriteItem's
    # capacity per call where DynamoDB reports it per item, so only "at least one" is certain here).
    assert used["dynamodb_write_units"] >= 4 * jobs + 1
    # 11 devices over 4 shards: some shard holds 3 or more, so some page sent a continuation job.
    assert used["sqs_requests"] >= 1
    assert report | {"created_at": 0} == {
        "id": message_id,
        "status": "completed",
        "total": len(devices),
        "passed": len(devices),
        "failed": 0,
        "pending": 0,
        "confirmed": 0,
        "possible_duplicates": 0,
        "created_at": 0,
        "topics": ["storms"],
        "devices": [],
    }


def test_device_on_several_published_topics_gets_one_copy_and_counts_once(aws: LocalAws):
    app = aws.new_app()
    both = aws.new_device(app, ["a", "b"])
    only_b = aws.new_device(app, ["b"])
    direct = aws.new_device(app, ["a"])

    message_id = aws.publish(app, topics=["a", "b"], devices=[direct["id"]])
    aws.drain()

    report = aws.publication(app, message_id)
    assert (report["total"], report["passed"]) == (3, 3)
    for device in (both, only_b, direct):
        assert len(aws.poll(device)["messages"]) == 1


def test_star_reaches_every_device_of_the_app_and_no_other_app(aws: LocalAws):
    app, other = aws.new_app(), aws.new_app()
    mine = [aws.new_device(app), aws.new_device(app, ["x"])]
    theirs = aws.new_device(other)

    message_id = aws.publish(app, topics=["*", "x"])
    aws.drain()

    assert aws.publication(app, message_id)["total"] == 2
    assert all(len(aws.poll(d)["messages"]) == 1 for d in mine)
    assert aws.poll(theirs)["messages"] == []


def test_redelivered_fanout_batch_does_not_change_counters(aws: LocalAws):
    # Given a publication whose expand jobs we deliver by hand, twice, as SQS may
    app = aws.new_app()
    aws.new_device(app, ["dup"])
    message_id = aws.publish(app, topics=["dup"])
    sqs = aws.pollers[0].sqs
    queue = next(p for p in aws.pollers if p.source.function == "FanoutFunction")
    received = sqs.receive_message(QueueUrl=queue.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in received
        ]
    }

    # When the same batch is processed twice
    assert aws.invoke("FanoutFunction", event) == {"batchItemFailures": []}
    first = aws.publication(app, message_id)
    assert aws.invoke("FanoutFunction", event) == {"batchItemFailures": []}

    # Then the counters are the same as after the first time
    assert aws.publication(app, message_id) == first
    assert (first["total"], first["passed"]) == (1, 1)
    aws.drain()  # the originals come back after their visibility timeout: still no change
    assert aws.publication(app, message_id) == first


def test_publish_to_unknown_or_foreign_device_is_404(aws: LocalAws):
    app, other = aws.new_app(), aws.new_app()
    foreign = aws.new_device(other)
    for device_id in (foreign["id"], "01JD0000000000000000000000"):
        reply = aws.http("POST", "/v1/messages", app["secret"], {"devices": [device_id], "body": "x"})
        assert reply.status == 404
        assert reply.body["error"]["code"] == "device_not_found"


def test_publication_of_another_app_answers_like_an_unknown_one(aws: LocalAws):
    app, other = aws.new_app(), aws.new_app()
    aws.new_device(app, ["t"])
    message_id = aws.publish(app, topics=["t"])
    foreign = aws.http("GET", f"/v1/messages/{message_id}", other["secret"])
    unknown = aws.http("GET", "/v1/messages/01JD0000000000000000000000", other["secret"])
    assert foreign.status == unknown.status == 404
    assert foreign.body == unknown.body


def test_publishing_needs_the_secret_key(aws: LocalAws):
    app = aws.new_app()
    device = aws.new_device(app)
    for key, status in (
        (app["public"], 403),
        (device["key"], 403),
        (None, 401),
        ("pl_sk_" + "0" * 16 + "_" + "0" * 40, 401),
    ):
        reply = aws.http("POST", "/v1/messages", key, {"topics": ["t"], "body": "x"})
        assert reply.status == status, (key, reply.body)


def test_bad_publish_bodies_are_4xx_with_the_error_shape(aws: LocalAws):
    app = aws.new_app()
    cases = [
        (b'{"topics": ["t"], "body": ', 400, "malformed_json"),
        (b'{"topics": ["t"], "body": "\xff\xfe"}', 400, "malformed_json"),
        (json.dumps({"topics": "t", "body": "x"}).encode(), 422, "validation_error"),
        (json.dumps({"topics": ["t"], "body": "x", "importance": "high"}).encode(), 422, "validation_error"),
        (json.dumps({"topics": ["t"], "body": "x", "extra": 1}).encode(), 422, "validation_error"),
        (json.dumps({"topics": ["t"], "body": "x" * 70_000}).encode(), 413, "payload_too_large"),
        (b"[]", 422, "body_not_object"),
    ]
    for data, status, code in cases:
        reply = aws.http("POST", "/v1/messages", app["secret"], data=data, headers={"Content-Type": "application/json"})
        assert (reply.status, reply.body["error"]["code"]) == (status, code), data[:40]
        assert reply.body["error"]["message"]


def test_idempotency_key_returns_the_first_publication_for_24_hours(aws: LocalAws):
    app = aws.new_app()
    aws.new_device(app, ["orders"])
    body = {"topics": ["orders"], "body": "Order 1 shipped"}
    headers = {"Idempotency-Key": "order-1-shipped"}

    first = aws.http("POST", "/v1/messages", app["secret"], body, headers=headers)
    again = aws.http("POST", "/v1/messages", app["secret"], body, headers=headers)
    other_app = aws.new_app()
    aws.new_device(other_app, ["orders"])
    theirs = aws.http("POST", "/v1/messages", other_app["secret"], body, headers=headers)

    assert (first.status, again.status) == (202, 202)
    assert again.body["id"] == first.body["id"]
    assert theirs.body["id"] != first.body["id"]  # keys are per app
    aws.drain()
    assert aws.publication(app, first.body["id"])["total"] == 1


def test_reusing_an_idempotency_key_with_another_body_is_refused(aws: LocalAws):
    app = aws.new_app()
    headers = {"Idempotency-Key": "k-1"}
    assert (
        aws.http("POST", "/v1/messages", app["secret"], {"topics": ["t"], "body": "a"}, headers=headers).status == 202
    )
    reused = aws.http("POST", "/v1/messages", app["secret"], {"topics": ["t"], "body": "b"}, headers=headers)
    assert (reused.status, reused.body["error"]["code"]) == (422, "idempotency_key_reused")


def test_without_a_key_every_publish_is_new(aws: LocalAws):
    app = aws.new_app()
    ids = {aws.publish(app, topics=["t"], body="same") for _ in range(2)}
    assert len(ids) == 2


def test_a_batch_short_of_time_hands_the_rest_back_and_every_target_still_counts_once(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch
):
    # Given invocations that always look short of time, delivering one target per slice
    from push_core import assembly

    app = aws.new_app()
    devices = [aws.new_device(app, ["handback"]) for _ in range(7)]

    # When a publication fans out: every batch invocation delivers one slice and hands the rest back
    with assembly.replaced(slice_size=1, handback_margin_s=10_000.0):
        message_id = aws.publish(app, topics=["handback"])
        aws.drain()

    # Then each device has the message once and the counters are exact
    for device in devices:
        assert [m["id"] for m in aws.poll(device)["messages"]] == [message_id]
    report = aws.publication(app, message_id)
    assert (report["total"], report["passed"], report["pending"], report["status"]) == (7, 7, 0, "completed")
    assert report["possible_duplicates"] == 0  # a hand-back releases the batch cleanly
