"""`make bench`'s local-stack scenario: `make run`'s stack under a small team's real volume.

Starts `python -m dev.local_stack` as `make run` does (DynamoDB Local when Java is here, execution
environments per function, the loopback provider emulators) and, over HTTP only:

1. registers 10,000 inbox devices on one topic (4 clients at once, then the last 1,000 one at a time:
   `local_register_p95_ms` is the 95th percentile of those registrations, made with 9,000+ devices
   already in the app), then 10,000 APNs devices on another;
2. publishes once to the 10,000 APNs devices (`local_apns_deliveries_per_s`: deliveries over the time from
   publish to the report's `completed`, every one accepted by the APNs emulator over HTTP/2 and TLS),
   then once to the 10,000 inbox devices (`local_inbox_deliveries_per_s`);
3. keeps publishing to both topics in turn until 100,000 deliveries are done, sampling the memory of
   every process of the stack (the gateway's, each execution environment's, DynamoDB Local's JVM) after
   each 10,000: `local_rss_mb_after_100k` is the resident set of the stack as a whole at the end, and
   `local_rss_growth_mb_60k_to_90k` what it gained between the second and third 30,000, leaving out of the
   earlier sample the processes that ended in between (idle environments), which would hide growth.

The stack's resident set is every physical page any of its processes holds, each counted once: read
from /proc/PID/pagemap (page frame numbers need root; without them the proportional set sizes are
summed instead, which split each shared page between the processes that map it and come within a few
MB). Summing each process's own resident set would count the zygote's libraries once per execution
environment that shares them; that sum is reported too (`rss_summed_mb`), as are the summed PSS.
Figures go to bench/results.json under "local_stack" (and the top-level keys), the memory curve to
bench/local_stack.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.documents import LOCAL_STACK_FIGURES, RESULTS, merge_results, print_verdicts, target_table
from dev.local_stack.running_stack import RunningStack, start_stack, stop_stack

REPO = Path(__file__).resolve().parents[1]
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
    """The stack's processes at one moment, in MB: its resident set (each page once), the processes'
    resident and proportional set sizes summed, and each kind of process's share (PSS)."""

    deliveries: int
    resident_mb: float
    rss_summed_mb: float
    pss_mb: float
    processes: dict[str, float] = field(default_factory=dict)  # name -> PSS MB
    counted: str = "pages"  # "pages": frames counted once; "pss": no frame numbers here, PSS summed
    # pid -> (its resident frames, its PSS MB), kept for the samples growth is measured between
    by_pid: dict[int, tuple[frozenset[int], float]] = field(default_factory=dict, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "by_pid"}


def growth_mb(start: Memory, end: Memory) -> float:
    """What the stack gained between two samples, each page once; a process that ended in between (an idle
    environment) is left out of the first, so its going does not pass for memory given back."""
    stayed = start.by_pid.keys() & end.by_pid.keys()
    if start.counted == end.counted == "pages":
        before = frozenset().union(*(start.by_pid[pid][0] for pid in stayed))
        after = frozenset().union(*(frames for frames, _ in end.by_pid.values()))
        return round((len(after) - len(before)) * _PAGE / 2**20, 1)
    return round(sum(pss for _, pss in end.by_pid.values()) - sum(start.by_pid[pid][1] for pid in stayed), 1)


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
    if arguments[1:3] == [b"-m", b"dev.emulators"]:
        return "provider emulators"
    # Forked environments keep their zygote's command line: every other process is one of them.
    return "execution environments and their zygote"


_PAGE = os.sysconf("SC_PAGE_SIZE")
_PRESENT = 1 << 63
_FRAME = (1 << 55) - 1


def _frames(pid: int) -> set[int]:
    """The physical page frames the process has resident (0s where the kernel hides them from non-root)."""
    frames: set[int] = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            start, end = (int(address, 16) for address in line.split()[0].split("-"))
            pagemap.seek(start // _PAGE * 8)
            entries = pagemap.read((end - start) // _PAGE * 8)
            frames.update(entry & _FRAME for (entry,) in struct.iter_unpack("<Q", entries) if entry & _PRESENT)
    return frames


def stack_memory(root: int, deliveries: int, keep: bool = False) -> Memory:
    """The stack's process tree from /proc: smaps_rollup for each process, pagemap for the whole; ``keep``
    keeps each process's frames, for ``growth_mb``."""
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += _children(pid)
    rss = pss = 0.0
    by_name: dict[str, float] = {}
    frames: set[int] = set()
    by_pid: dict[int, tuple[frozenset[int], float]] = {}
    for pid in pids:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
            name = _process_name(pid, root)
            own = _frames(pid)
        except OSError:
            continue  # ended while we looked
        frames |= own
        rss += int(fields["Rss"].split()[0]) / 1024
        process_pss = int(fields["Pss"].split()[0]) / 1024
        pss += process_pss
        by_name[name] = round(by_name.get(name, 0.0) + process_pss, 1)
        if keep:
            by_pid[pid] = (frozenset(own), process_pss)
    if frames - {0}:
        resident = round(len(frames) * _PAGE / 2**20, 1)
        return Memory(deliveries, resident, round(rss, 1), round(pss, 1), by_name, by_pid=by_pid)
    return Memory(deliveries, round(pss, 1), round(rss, 1), round(pss, 1), by_name, counted="pss", by_pid=by_pid)


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
    log(f"fresh: {_memory_line(memory[0])}")

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
    log(f"registered: {_memory_line(memory[-1])}")

    delivered = 0
    rates: dict[str, list[float]] = {"apns": [], "inbox": []}
    round_ = 0
    while delivered < deliveries:
        kind = ("apns", "inbox")[round_ % 2]
        report, seconds = publish_and_wait(client, secret, f"{kind}-all", f"bench {round_}")
        _check_complete(report, devices)
        delivered += devices
        rates[kind].append(devices / seconds)
        memory.append(stack_memory(stack.process.pid, delivered, keep=delivered in (60_000, 90_000)))
        log(
            f"publication {round_ + 1} ({kind}): {devices:,} in {seconds:.1f} s = {devices / seconds:,.0f}/s; "
            f"{delivered:,} delivered; {_memory_line(memory[-1])}"
        )
        round_ += 1

    def at(count: int) -> Memory:
        return min(memory, key=lambda sample: abs(sample.deliveries - count))

    final = memory[-1]
    described = client.call("GET", "/_local/environments", stack.admin_key)["functions"]
    alive = {name: len(function["environments"]) for name, function in described.items() if function["environments"]}
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
        "local_rss_mb_after_100k": final.resident_mb,
        "memory_counted": final.counted,
        "rss_summed_mb_after_100k": final.rss_summed_mb,
        "pss_mb_after_100k": final.pss_mb,
        "local_rss_growth_mb_60k_to_90k": growth_mb(at(60_000), at(90_000)),
        # The plain difference, in which environments that ended for idleness count as memory given back.
        "resident_change_mb_60k_to_90k": round(at(90_000).resident_mb - at(60_000).resident_mb, 1),
        "processes_ended_60k_to_90k": len(at(60_000).by_pid.keys() - at(90_000).by_pid.keys()),
        "memory": [sample.as_json() for sample in memory],
        "environments_at_end": alive,
    }


def _memory_line(sample: Memory) -> str:
    return (
        f"resident {sample.resident_mb:.0f} MB (RSS summed {sample.rss_summed_mb:.0f}, PSS {sample.pss_mb:.0f}; "
        + ", ".join(f"{name} {mb:.0f}" for name, mb in sample.processes.items())
        + ")"
    )


def _plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = results["memory"]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    x = [s["deliveries"] / 1000 for s in samples]
    axes.plot(x, [s["resident_mb"] for s in samples], marker="o", label="resident, each page once")
    axes.plot(x, [s["rss_summed_mb"] for s in samples], marker="o", label="RSS summed over processes")
    axes.plot(x, [s["pss_mb"] for s in samples], marker="o", label="PSS summed")
    axes.axhline(TARGETS["local_rss_mb_after_100k"][1], color="grey", linestyle="--", label="target")
    axes.set_xlabel("thousands of deliveries (after registering the devices)")
    axes.set_ylabel("MB, whole stack")
    axes.set_title(f"make run's memory, {results['devices']:,} inbox + {results['devices']:,} APNs devices")
    axes.set_ylim(bottom=0)
    axes.legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)


def readme_figures(results: dict[str, Any]) -> str:
    """The README's table and notes for a run's results: every figure in them comes from ``results``."""
    local = results["local_stack"]
    final = local["memory"][-1]
    counted = (
        "every physical page any of its processes holds, counted once (from /proc/PID/pagemap)"
        if local.get("memory_counted") == "pages"
        else "the processes' proportional set sizes summed (page frames were not readable)"
    )
    shares = ", ".join(f"{name} {mb:,} MB" for name, mb in final["processes"].items())
    alive = ", ".join(f"{name} {count}" for name, count in local.get("environments_at_end", {}).items())
    notes = (
        "The delivery figures are each kind's first publication, from publish to the report's `completed` "
        "(the APNs one includes starting the fan-out and delivery environments, the HTTP/2 connections and "
        "the provider tokens); the later ones ran at "
        + ", ".join(f"{rate:,}" for rate in local["apns_deliveries_per_s_all"][1:])
        + " (APNs) and "
        + ", ".join(f"{rate:,}" for rate in local["inbox_deliveries_per_s_all"][1:])
        + f" (inbox) a second. The stack's memory is {counted}: {results['local_rss_mb_after_100k']:,} MB "
        f"after 100,000 deliveries ({local['rss_summed_mb_after_100k']:,} MB if each process's resident set "
        f"were summed, which counts the zygote's shared libraries once per environment). By kind of process "
        f"(PSS): {shares}; the environments then alive: {alive or 'not recorded'}. Between 60,000 and 90,000 "
        f"deliveries the stack grew {results['local_rss_growth_mb_60k_to_90k']:,} MB: the pages of every process "
        "alive at 90,000 against those at 60,000 of the processes alive at both, so an environment ended for "
        f"idleness in between ({local['processes_ended_60k_to_90k']} did) does not pass for memory given back "
        f'(the plain difference is {local["resident_change_mb_60k_to_90k"]:,} MB); "no growth" is read as at '
        "most 5 MB, the noise of one sample."
    )
    return "\n".join([*target_table(results, TARGETS), "", notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_stack", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=int(os.environ.get("BENCH_LOCAL_DEVICES", "10000")))
    parser.add_argument("--deliveries", type=int, default=int(os.environ.get("BENCH_LOCAL_DELIVERIES", "100000")))
    parser.add_argument("--option", action="append", default=[], help="a further python -m dev.local_stack option")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.json alone")
    args = parser.parse_args(argv)
    results = run(args.devices, args.deliveries, tuple(args.option))
    print_verdicts(results, TARGETS)
    full = args.devices == 10000 and args.deliveries >= 100000
    if args.no_write or not full:
        print("not written to bench/results.json (only the full scenario is)")
        return 0
    written = merge_results({**{key: results[key] for key in TARGETS}, "local_stack": results})
    _plot(results)
    LOCAL_STACK_FIGURES.write(readme_figures(written))
    print(f"wrote {RESULTS.relative_to(REPO)}, {PLOT.relative_to(REPO)} and README.md's local-stack figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
