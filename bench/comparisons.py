"""The peer comparisons `make bench` runs, and how docs/PERFORMANCE.md quotes them from bench/results.json."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Comparison:
    platform: str
    ours: str  # the side (bench/sides.py) that runs pushlane's delivery path
    peers: tuple[str, ...]  # the sides running the peer's documented paths: the fastest of them counts
    workload: str  # what every side sends


SHARED = "one shared payload, no errors"
TIMES = "\N{MULTIPLICATION SIGN}"
# How each peer side uses its library, shortly and in full: the documented path, named in the table.
PEER_PATHS = {
    "aioapns": (
        "aioapns",
        "aioapns 4.0 `APNs.send_notification`, one connection, 1,000 in flight, plus the flow-control credit it "
        "never returns (`credit_aioapns_flow_control`, proven to run by `tests/providers/test_aioapns_peer.py`)",
    ),
    "firebase-admin": (
        "`send_each`",
        "firebase-admin 7 `messaging.send_each`, 500 messages a call (a thread pool, HTTP/1.1)",
    ),
    "firebase-admin-async": (
        "`send_each_async`",
        "firebase-admin 7 `messaging.send_each_async`, 500 messages a call (httpx, HTTP/2)",
    ),
    "pywebpush": ("`webpush()`", "pywebpush 2.5 `webpush()` with one shared `requests` session"),
    "pywebpush-async": (
        "`webpush_async`",
        "pywebpush 2.5 `webpush_async` with one shared aiohttp session, VAPID signed once per origin",
    ),
}
COMPARISONS = {
    "apns_vs_aioapns": Comparison("apns", "pushlane-apns", ("aioapns",), SHARED),
    "fcm_vs_firebase_admin": Comparison("fcm", "pushlane-fcm", ("firebase-admin", "firebase-admin-async"), SHARED),
    "webpush_vs_pywebpush": Comparison("webpush", "pushlane-webpush", ("pywebpush", "pywebpush-async"), SHARED),
}


def _path(side: str) -> str:
    return PEER_PATHS[side][1] if side in PEER_PATHS else side


def _slower_paths(detail: dict[str, Any]) -> str:
    """The peer's other documented paths, slower than the one compared against."""
    others = [
        f"{PEER_PATHS[side][0] if side in PEER_PATHS else side} {run['per_cpu_s']:,.0f} per CPU-s"
        for side, run in detail.get("peer_paths", {}).items()
        if side != detail["peer"]["side"]
    ]
    return f"; slower: {', '.join(others)}" if others else ""


def _rate(side: dict[str, Any]) -> str:
    return f"{side['per_cpu_s']:,.0f} ({1e6 / side['per_cpu_s']:,.0f} µs each)"


def _measured_how(details: dict[str, Any]) -> str:
    """How many notifications each side sent and how many runs it had (the least CPU counts)."""
    how = {
        name: (detail["pushlane"]["notifications"], len(detail["pushlane"]["cpu_s_all_runs"]))
        for name, detail in details.items()
    }

    def said(notifications: int, runs: int) -> str:
        return f"{notifications:,} notifications per side, the least CPU of {runs} run{'s' if runs > 1 else ''}"

    if len(set(how.values())) == 1:
        return said(*next(iter(how.values())))
    return "; ".join(f"`{name}`: {said(*measured)}" for name, measured in how.items())


def figures(results: dict[str, Any]) -> str:
    """docs/PERFORMANCE.md's comparison table and note: every figure and label from ``results``."""
    rows = []
    for name, detail in results["details"].items():
        ours, peer = detail["pushlane"], detail["peer"]
        rows.append(
            f"| `{name}` | {detail.get('workload', SHARED)} | {_path(peer['side'])}{_slower_paths(detail)} | "
            f"{_rate(ours)} | {_rate(peer)} | **{results[name]}{TIMES}** |"
        )
    accepted = all(
        side["emulator_accepted"] == side["notifications"]
        for detail in results["details"].values()
        for side in (detail["pushlane"], detail["peer"])
    )
    note = f"{_measured_how(results['details'])} (`cpu_s_all_runs` in `bench/results.json` has every run); " + (
        "every notification of every counted run reached the emulator."
        if accepted
        else "NOT every notification reached the emulator: see `outcomes` in the file."
    )
    header = "| comparison | workload | peer's path | pushlane (per CPU-s) | peer (per CPU-s) | ratio |"
    return "\n".join([header, "|---|---|---|---|---|---|", *rows, "", note])
