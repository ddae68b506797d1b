"""The peer comparisons `make bench` runs, and how docs/PERFORMANCE.md quotes them from bench/results.json."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Comparison:
    platform: str
    ours: str  # the side (bench/sides.py) that runs pushlane's delivery path
    peer: str  # the side that runs the peer
    peer_path: str  # how the peer is used: the documented path its side takes
    workload: str  # what every side sends


SHARED = "one shared payload, no errors"
TIMES = "\N{MULTIPLICATION SIGN}"
COMPARISONS = {
    "apns_vs_aioapns": Comparison(
        "apns",
        "pushlane-apns",
        "aioapns",
        "aioapns 4.0 `APNs.send_notification`, one connection, 1,000 in flight, plus the flow-control credit "
        "it never returns (`credit_aioapns_flow_control`, proven to run by `tests/providers/test_aioapns_peer.py`)",
        SHARED,
    ),
    "fcm_vs_firebase_admin": Comparison(
        "fcm",
        "pushlane-fcm",
        "firebase-admin",
        "firebase-admin 7 `messaging.send_each`, 500 messages a call (its own thread pool, HTTP/1.1)",
        SHARED,
    ),
    "webpush_vs_pywebpush": Comparison(
        "webpush",
        "pushlane-webpush",
        "pywebpush",
        "pywebpush 2.5 `webpush()` with one shared `requests` session",
        SHARED,
    ),
}


def _rate(side: dict[str, Any]) -> str:
    return f"{side['per_cpu_s']:,.0f} ({1e6 / side['per_cpu_s']:,.0f} µs each)"


def figures(results: dict[str, Any]) -> str:
    """docs/PERFORMANCE.md's comparison table and note: every figure and label from ``results``."""
    rows = []
    for name, detail in results["details"].items():
        ours, peer = detail["pushlane"], detail["peer"]
        rows.append(
            f"| `{name}` | {detail.get('workload', SHARED)} | {detail.get('peer_path', peer['side'])} | "
            f"{_rate(ours)} | {_rate(peer)} | **{results[name]}{TIMES}** |"
        )
    accepted = all(
        side["emulator_accepted"] == side["notifications"]
        for detail in results["details"].values()
        for side in (detail["pushlane"], detail["peer"])
    )
    note = (
        f"{results['count']:,} notifications per side, {results['in_flight']:,} in flight, the least CPU of "
        f"{results['repeat']} runs per side (`cpu_s_all_runs` in `bench/results.json` has every run); "
        + (
            "every notification of every counted run reached the emulator."
            if accepted
            else "NOT every notification reached the emulator: see `outcomes` in the file."
        )
    )
    header = "| comparison | workload | peer's path | pushlane (per CPU-s) | peer (per CPU-s) | ratio |"
    return "\n".join([header, "|---|---|---|---|---|---|", *rows, "", note])
