"""`make bench`'s local-stack scenario: `make run`'s stack under a small team's real volume.

Starts `python -m local_stack` as `make run` does (DynamoDB Local when Java is here, execution
environments per function, the loopback provider emulators) and, over HTTP only:

1. registers 10,000 inbox devices on one topic (4 clients at once, then the last 1,000 one at a time:
   `local_register_p95_ms` is the 95th percentile of those registrations, made with 9,000+ devices
   already in the app), then 10,000 APNs devices on another;
2. publishes once to the 10,000 APNs devices (`local_apns_deliveries_per_s`: deliveries over the time from
   publish to the report's `completed`, every one accepted by the APNs emulator over HTTP/2 and TLS),
   then once to the 10,000 inbox devices (`local_inbox_deliveries_per_s`);
3. keeps publishing to both topics in turn until 100,000 deliveries are done, sampling the memory of
   every process of the stack (the gateway's, each execution environment's, DynamoDB Local's JVM) after
   each 10,000: `local_rss_mb_after_100k` is the sum of their resident sets at the end, and
   `local_rss_growth_mb_60k_to_90k` the change between the second and third 30,000.

Resident sets are summed as they are (pages shared between processes count once per process, so the
sum overstates what the machine gives the stack); the proportional set sizes (shared pages split
between their processes) are reported next to them. Figures go to bench/results.json under "local_stack"
(and the four top-level keys), the memory curve to bench/local_stack.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from local_stack.running_stack import RunningStack, start_stack, stop_stack

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.json"
PLOT = REPO / "bench" / "local_stack.png"
TARGETS = {
    "local_inbox_deliveries_per_s": (">=", 1000),
    "local_apns_deliveries_per_s": (">=", 2000),
    "local_rss_mb_after_100k": ("<=", 600),
    "local_register_p95_ms": ("<=", 50),
    # "No growth between the second and third 30,000", read as at most the noise of one sample.
    "local_rss_growth_mb_60k_to_90k": ("<=", 5),
}
# Limits off the bench's path: one app registering 20,000 devices is not abuse here.
PARAMETERS = ("RateLimitPerKey=1000000", "RateLimitPerApp=1000000", "PublicationsPerMinute=10000")
REGISTERING_CLIENTS = 4
TIMED_REGISTRATIONS = 1000
COMPLETION_TIMEOUT_S = 600


@dataclass
class Memory:
    """The stack's processes at one moment: summed resident and proportional set sizes, in MB."""

    deliveries: int
    rss_mb: float
    pss_mb: float
    processes: dict[str, float] = field(default_factory=dict)  # name -> RSS MB


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _process_name(pid: int, root: int) -> str:
    if pid == root:
        return "gateway, pollers, moto"
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"java" in arguments[0]:
        return "DynamoDB Local (JVM)"
    if arguments[1:3] == [b"-m", b"emulators"]:
        return "provider emulators"
    # Forked environments keep their zygote's command line: every other process is one of them.
    return "execution environments and their zygote"


def stack_memory(root: int, deliveries: int) -> Memory:
    """Sum /proc/PID/smaps_rollup over the stack's process tree."""
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += _children(pid)
    rss = pss = 0.0
    by_name: dict[str, float] = {}
    for pid in pids:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
            name = _process_name(pid, root)
        except OSError:
            continue  # ended while we looked
        process_rss = int(fields["Rss"].split()[0]) / 1024
        rss += process_rss
        pss += int(fields["Pss"].split()[0]) / 1024
        by_name[name] = round(by_name.get(name, 0.0) + process_rss, 1)
    return Memory(deliveries, round(rss, 1), round(pss, 1), by_name)


class Client:
    """One HTTP client of the stack."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False

    def call(self, method: str, path: str, key: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        reply = self.session.request(
            method, self.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=120, **kwargs
        )
        if reply.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text[:300]}")
        return reply.json() if reply.content else None


def _register(client: Client, public_key: str, device: dict[str, Any], topic: str) -> float:
    """Register one device and subscribe it; the registration's seconds."""
    started = time.perf_counter()
    registered = client.call("POST", "/v1/devices", public_key, expect=(201,), json=device)
    elapsed = time.perf_counter() - started
    path = f"/v1/devices/{registered['device']['id']}/topics/{topic}"
    client.call("PUT", path, registered["device_key"], expect=(201,))
    return elapsed


def register_many(url: str, public_key: str, devices: list[dict[str, Any]], topic: str) -> None:
    """Register and subscribe these devices from REGISTERING_CLIENTS clients at once."""
    failures: list[BaseException] = []
    lock = threading.Lock()
    pending = list(reversed(devices))

    def work() -> None:
        client = Client(url)
        while True:
            with lock:
                if not pending or failures:
                    return
                device = pending.pop()
            try:
                _register(client, public_key, device, topic)
            except Exception as error:  # noqa: BLE001 - reported below, with the others stopped
                failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(REGISTERING_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def publish_and_wait(client: Client, secret_key: str, topic: str, label: str) -> tuple[dict[str, Any], float]:
    """Publish to a topic and poll its report until completed: the report and the seconds it took."""
    started = time.perf_counter()
    published = client.call(
        "POST", "/v1/messages", secret_key, expect=(202,), json={"topics": [topic], "title": label, "body": label}
    )
    deadline = time.monotonic() + COMPLETION_TIMEOUT_S
    while True:
        report = client.call("GET", f"/v1/messages/{published['id']}", secret_key)
        if report["status"] == "completed":
            return report, time.perf_counter() - started
        if time.monotonic() > deadline:
            raise RuntimeError(f"publication {published['id']} to {topic} did not complete: {report}")
        time.sleep(0.1)


def _check_complete(report: dict[str, Any], devices: int) -> None:
    counted = (report["total"], report["passed"], report["failed"])
    if counted != (devices, devices, 0):
        raise RuntimeError(f"publication {report['id']}: total/passed/failed {counted}, expected {devices} passed")


def run(devices: int, deliveries: int, options: tuple[str, ...], log: Callable[[str], None] = print) -> dict[str, Any]:
    stack: RunningStack = start_stack(*PARAMETERS, options=options, keep_output=False)
    try:
        return _measure(stack, devices, deliveries, log)
    finally:
        stop_stack(stack, timeout_s=60)


def _measure(stack: RunningStack, devices: int, deliveries: int, log: Callable[[str], None]) -> dict[str, Any]:
    dynamodb = next(line for line in stack.lines if line.startswith("# DynamoDB:"))
    log(f"local stack at {stack.url}; {dynamodb[2:]}")
    client = Client(stack.url)
    created = client.call("POST", "/v1/apps", stack.admin_key, expect=(201,), json={"name": "bench"})
    app_id, secret, public = created["app"]["id"], created["secret_key"]["key"], created["public_key"]["key"]
    files = stack.emulator_files
    credentials = json.loads((files / "apns.json").read_text())
    client.call("PUT", f"/v1/apps/{app_id}/credentials", secret, expect=(200, 201), json=credentials)
    apns_device = json.loads((files / "apns-device.json").read_text())
    memory = [stack_memory(stack.process.pid, 0)]
    log(f"fresh: RSS {memory[0].rss_mb:.0f} MB (PSS {memory[0].pss_mb:.0f} MB) {memory[0].processes}")

    started = time.perf_counter()
    inbox = [{"platform": "inbox", "token": f"bench-inbox-{n}"} for n in range(devices)]
    untimed = max(0, devices - TIMED_REGISTRATIONS)
    register_many(stack.url, public, inbox[:untimed], "inbox-all")
    timings = [_register(client, public, device, "inbox-all") for device in inbox[untimed:]]
    register_p95_ms = statistics.quantiles(timings, n=20)[-1] * 1000
    log(
        f"{devices:,} inbox devices in {time.perf_counter() - started:.0f} s; the last {len(timings):,} one at "
        f"a time: p50 {statistics.median(timings) * 1000:.1f} ms, p95 {register_p95_ms:.1f} ms"
    )
    started = time.perf_counter()
    apns = [{**apns_device, "token": f"{n:064x}"} for n in range(devices)]
    register_many(stack.url, public, apns, "apns-all")
    log(f"{devices:,} APNs devices in {time.perf_counter() - started:.0f} s")
    memory.append(stack_memory(stack.process.pid, 0))
    log(f"registered: RSS {memory[-1].rss_mb:.0f} MB (PSS {memory[-1].pss_mb:.0f} MB) {memory[-1].processes}")

    delivered = 0
    rates: dict[str, list[float]] = {"apns": [], "inbox": []}
    round_ = 0
    while delivered < deliveries:
        kind = ("apns", "inbox")[round_ % 2]
        report, seconds = publish_and_wait(client, secret, f"{kind}-all", f"bench {round_}")
        _check_complete(report, devices)
        delivered += devices
        rates[kind].append(devices / seconds)
        memory.append(stack_memory(stack.process.pid, delivered))
        log(
            f"publication {round_ + 1} ({kind}): {devices:,} in {seconds:.1f} s = {devices / seconds:,.0f}/s; "
            f"{delivered:,} delivered; RSS {memory[-1].rss_mb:.0f} MB (PSS {memory[-1].pss_mb:.0f} MB)"
        )
        round_ += 1

    def at(count: int) -> Memory:
        return min(memory, key=lambda sample: abs(sample.deliveries - count))

    final = memory[-1]
    return {
        "devices": devices,
        "deliveries": delivered,
        "dynamodb": dynamodb.removeprefix("# DynamoDB: "),
        "registering_clients": REGISTERING_CLIENTS,
        "register_timed": len(timings),
        "register_p50_ms": round(statistics.median(timings) * 1000, 1),
        "local_register_p95_ms": round(register_p95_ms, 1),
        # The first publication of each kind is the one the figure names; later ones are kept too.
        "local_apns_deliveries_per_s": round(rates["apns"][0]),
        "local_inbox_deliveries_per_s": round(rates["inbox"][0]),
        "apns_deliveries_per_s_all": [round(rate) for rate in rates["apns"]],
        "inbox_deliveries_per_s_all": [round(rate) for rate in rates["inbox"]],
        "local_rss_mb_after_100k": final.rss_mb,
        "local_pss_mb_after_100k": final.pss_mb,
        "local_rss_growth_mb_60k_to_90k": round(at(90_000).rss_mb - at(60_000).rss_mb, 1),
        "memory": [sample.__dict__ for sample in memory],
    }


def _plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = results["memory"]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    x = [s["deliveries"] / 1000 for s in samples]
    axes.plot(x, [s["rss_mb"] for s in samples], marker="o", label="RSS, summed over processes")
    axes.plot(x, [s["pss_mb"] for s in samples], marker="o", label="PSS (shared pages split)")
    axes.axhline(TARGETS["local_rss_mb_after_100k"][1], color="grey", linestyle="--", label="target")
    axes.set_xlabel("thousands of deliveries (after registering the devices)")
    axes.set_ylabel("MB, whole stack")
    axes.set_title(f"make run's memory, {results['devices']:,} inbox + {results['devices']:,} APNs devices")
    axes.set_ylim(bottom=0)
    axes.legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


def met(key: str, value: float) -> bool:
    """Whether a figure meets the issue's target for it."""
    sense, target = TARGETS[key]
    return value >= target if sense == ">=" else value <= target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_stack", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=int(os.environ.get("BENCH_LOCAL_DEVICES", "10000")))
    parser.add_argument("--deliveries", type=int, default=int(os.environ.get("BENCH_LOCAL_DELIVERIES", "100000")))
    parser.add_argument("--option", action="append", default=[], help="a further python -m local_stack option")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    args = parser.parse_args(argv)
    results = run(args.devices, args.deliveries, tuple(args.option))
    print(f"{'figure':34} {'measured':>10} {'target':>10}")
    for key, (sense, target) in TARGETS.items():
        verdict = "ok" if met(key, results[key]) else "MISSED"
        print(f"{key:34} {results[key]:>10,} {sense + ' ' + str(target):>10}  {verdict}")
    full = args.devices == 10000 and args.deliveries >= 100000
    if args.no_write or not full:
        print("not written to bench/results.json (only the full scenario is)")
        return 0
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    top = {key: results[key] for key in TARGETS}
    RESULTS.write_text(json.dumps({**previous, **top, "local_stack": results}, indent=2) + "\n")
    _plot(results)
    print(f"wrote {RESULTS.relative_to(REPO)} and {PLOT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
