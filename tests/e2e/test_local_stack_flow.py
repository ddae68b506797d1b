"""The whole flow over HTTP against `python -m dev.local_stack`: moto server, gateway, SQS pollers, handlers."""

import json
import re
import subprocess
import threading
import time

import requests
from openapi_spec_validator import validate

from dev.local_stack.template import load_sam_app
from tests.e2e.conftest import Api, RunningStack


def test_printed_quickstart_works_when_pasted_into_a_shell(stack: RunningStack, tmp_path):
    script = tmp_path / "quickstart.sh"
    script.write_text(stack.quickstart())
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"id"')]
    inbox, deals = reports[0], reports[-1]
    assert (inbox["status"], inbox["total"], inbox["passed"], inbox["confirmed"]) == ("completed", 1, 1, 1)
    # The same message reached an iPhone, an Android phone, a browser and a webhook through the emulators.
    assert (deals["status"], deals["total"], deals["passed"], deals["failed"]) == ("completed", 4, 4, 0)
    ledgers = re.findall(r"--cacert (\S+) (https://\S+/_emulator/ledger)", stack.quickstart())
    assert len(ledgers) == 4
    received = {}
    for ca_path, url in ledgers:
        ledger = requests.get(url, verify=ca_path, timeout=10).json()
        assert [e["outcome"] for e in ledger["entries"]] == ["delivered"], url
        received[ledger["emulator"]] = ledger["entries"][0]["data"]
    assert sorted(received) == ["apns", "fcm", "webhook", "webpush"]
    assert received["apns"]["payload"]["aps"]["alert"]["body"] == "Half price today"
    assert received["fcm"]["message"]["notification"]["body"] == "Half price today"
    assert json.loads(received["webpush"]["plaintext"])["body"] == "Half price today"  # decrypted, as a browser would
    assert received["webhook"]["signature"]["verified"] is True


def test_publish_poll_confirm_and_counters(http: Api):
    # Given an app with an inbox device subscribed to a topic
    app = http.new_app()
    reply = http.call("POST", "/v1/devices", app["public"], json={"platform": "inbox", "token": "e2e-device"})
    assert reply.status_code == 201
    device_id, device_key = reply.json()["device"]["id"], reply.json()["device_key"]
    assert http.call("PUT", f"/v1/devices/{device_id}/topics/alerts", device_key).status_code == 201

    # When the app publishes and the device long-polls
    published = http.call("POST", "/v1/messages", app["secret"], json={"topics": ["alerts"], "title": "T", "body": "B"})
    assert published.status_code == 202
    message_id = published.json()["id"]
    assert published.headers["Location"] == f"/v1/messages/{message_id}"
    polled = http.call("GET", f"/v1/devices/{device_id}/messages?wait=15", device_key).json()

    # Then it receives the message, confirms it, and the report shows passed 1, confirmed 1
    assert [(m["id"], m["title"], m["body"]) for m in polled["messages"]] == [(message_id, "T", "B")]
    confirmed = http.call("POST", f"/v1/devices/{device_id}/messages/confirm", device_key, json={"ids": [message_id]})
    assert confirmed.json() == {"confirmed": 1}
    # The report fills in as every shard's job finishes (the device may see the message before that).
    deadline = time.monotonic() + 15
    report = http.call("GET", f"/v1/messages/{message_id}", app["secret"]).json()
    while report["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.2)
        report = http.call("GET", f"/v1/messages/{message_id}", app["secret"]).json()
    assert {k: report[k] for k in ("status", "total", "passed", "failed", "pending", "confirmed")} == {
        "status": "completed",
        "total": 1,
        "passed": 1,
        "failed": 0,
        "pending": 0,
        "confirmed": 1,
    }
    assert http.call("GET", f"/v1/devices/{device_id}/messages", device_key).json()["messages"] == []


def test_app_a_key_on_app_b_ids_answers_404_like_unknown_ids(http: Api):
    a, b = http.new_app(), http.new_app()
    device = http.call("POST", "/v1/devices", b["public"], json={"platform": "inbox"}).json()["device"]["id"]
    http.call("PUT", f"/v1/devices/{device}/topics/t", b["secret"])
    message = http.call("POST", "/v1/messages", b["secret"], json={"topics": ["t"], "body": "x"}).json()["id"]
    unknown = "01JD0000000000000000000000"
    for foreign, missing in [
        (f"/v1/apps/{b['id']}", f"/v1/apps/{unknown}"),
        (f"/v1/devices/{device}", f"/v1/devices/{unknown}"),
        (f"/v1/devices/{device}/topics", f"/v1/devices/{unknown}/topics"),
        (f"/v1/messages/{message}", f"/v1/messages/{unknown}"),
    ]:
        theirs, nobodys = http.call("GET", foreign, a["secret"]), http.call("GET", missing, a["secret"])
        assert theirs.status_code == nobodys.status_code == 404, foreign
        assert theirs.json() == nobodys.json()
    published = http.call("POST", "/v1/messages", a["secret"], json={"devices": [device], "body": "x"})
    assert published.status_code == 404


def test_bad_inputs_get_a_4xx_with_code_and_message(http: Api):
    app = http.new_app()
    json_headers = {"Content-Type": "application/json"}
    cases = [
        ("POST", "/v1/messages", app["secret"], b'{"body": ', 400, "malformed_json"),
        ("POST", "/v1/messages", app["secret"], b'{"body": "\xff"}', 400, "malformed_json"),
        ("POST", "/v1/messages", app["secret"], b'{"topics": ["t"], "body": 5}', 422, "validation_error"),
        ("POST", "/v1/messages", app["secret"], b'{"topics": ["t"]}', 422, "validation_error"),
        ("POST", "/v1/messages", None, b'{"topics": ["t"], "body": "x"}', 401, "missing_key"),
        ("POST", "/v1/messages", "pl_sk_nope", b'{"topics": ["t"], "body": "x"}', 401, "invalid_key"),
        ("POST", "/v1/messages", app["public"], b'{"topics": ["t"], "body": "x"}', 403, "wrong_key_role"),
        ("POST", "/v1/devices", app["public"], b'{"platform": "apns", "token": 12}', 422, "validation_error"),
        (
            "POST",
            "/v1/messages",
            app["secret"],
            b'{"body": "' + b"x" * 100_000 + b'"}',
            413,
            "payload_too_large",
        ),
        ("GET", "/v1/messages/not-an-id", app["secret"], None, 404, "message_not_found"),
        ("GET", "/v2/anything", None, None, 404, "route_not_found"),
        ("DELETE", "/v1/messages", app["secret"], None, 404, "route_not_found"),
    ]
    for method, path, key, data, status, code in cases:
        reply = http.call(method, path, key, data=data, headers=json_headers)
        assert reply.status_code == status, (path, data and data[:30], reply.text)
        body = reply.json()
        assert body["error"]["code"] == code, body
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]


def test_openapi_document_lists_every_routed_operation(http: Api):
    document = http.call("GET", "/v1/openapi.json").json()
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routed = {
        (route.method, route.path)
        for route in load_sam_app(parameters={"AdminKeySha256": "0" * 64}).routes
        if route.path not in {"/", "/{proxy+}", "/v1/openapi.json", "/v1/docs"}
    }
    assert routed <= operations, routed - operations
    assert "bearer" in document["components"]["securitySchemes"]
    docs = http.call("GET", "/v1/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_openapi_document_is_valid_and_documents_every_answer(http: Api):
    document = http.call("GET", "/v1/openapi.json").json()
    validate(document)  # every $ref resolves (ErrorBody included) and the document is OpenAPI 3.1
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            successes = [status for status in responses if status.startswith("2")]
            assert successes, f"{method} {path} documents no success"
            for status in successes:
                content = responses[status].get("content", {})
                assert (status == "204") == (content == {}), f"{method} {path} {status}: {content}"
            for status in ("400", "401", "403", "404", "413", "415", "422", "429", "503"):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_stack_keeps_serving_while_a_long_poll_waits(http: Api):
    app = http.new_app()
    device = http.call("POST", "/v1/devices", app["public"], json={"platform": "inbox"}).json()
    waiting = threading.Thread(
        target=http.call,
        args=("GET", f"/v1/devices/{device['device']['id']}/messages?wait=3", device["device_key"]),
    )
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert http.call("GET", f"/v1/apps/{app['id']}", app["secret"]).status_code == 200
    assert time.monotonic() - started < 2
    waiting.join()
