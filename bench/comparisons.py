"""The peer comparisons `make bench` runs, and how docs/PERFORMANCE.md quotes them from bench/results.json."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.sides import TOKENS


@dataclass(frozen=True)
class Comparison:
    platform: str
    ours: str  # the side (bench/sides.py) that runs pushlane's delivery path
    peers: tuple[str, ...]  # the sides running the peer's documented paths: the fastest of them counts


@dataclass(frozen=True)
class Workload:
    """What every side of a comparison meets: the emulator is set up so before each run."""

    name: str
    description: str  # said once under the table; rows name the workload
    dead_share: float = 0.0  # of the tokens (of the subscriptions, for Web Push): the provider's dead answer
    faults: Mapping[str, float] = field(default_factory=dict)  # the emulator's fault knobs

    def dead_tokens(self, platform: str, config: Mapping[str, Any]) -> list[str]:
        """The tokens (Web Push: endpoints) the emulator answers as dead, spread evenly over the run."""
        per_hundred = round(self.dead_share * 100)
        if platform == "webpush":
            subscriptions = config["webpush"]["subscriptions"]
            return [s["endpoint"] for n, s in enumerate(subscriptions) if n % 100 < per_hundred]
        return [TOKENS[platform](i) for i in range(int(config["count"])) if i % 100 < per_hundred]


WORKLOADS = (
    Workload("shared", "one shared payload, no errors"),
    Workload(
        "error_mix",
        "one shared payload; each request answered 400 (10 %), 429 (3 %) or 503 (2 %, both with Retry-After "
        "1 s) at random under a fixed seed, and 15 % of the tokens dead (APNs and Web Push 410, FCM 404), so "
        "about 72 % delivered; `outcomes` in the file has each side's counts",
        dead_share=0.15,
        faults={"bad_request_rate": 0.10, "throttle_rate": 0.03, "unavailable_rate": 0.02, "retry_after_s": 1},
    ),
)
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
        "firebase-admin 7 `messaging.send_each_async`, 500 messages a call (httpx, HTTP/2), plus closing the "
        "responses its retry drops (`close_firebase_retried_responses`: without it 503s hang it forever, "
        "`tests/providers/test_firebase_async_peer.py`)",
    ),
    "pywebpush": ("`webpush()`", "pywebpush 2.5 `webpush()` with one shared `requests` session"),
    "pywebpush-async": (
        "`webpush_async`",
        "pywebpush 2.5 `webpush_async` with one shared aiohttp session, VAPID signed once per origin",
    ),
}
COMPARISONS = {
    "apns_vs_aioapns": Comparison("apns", "pushlane-apns", ("aioapns",)),
    "fcm_vs_firebase_admin": Comparison("fcm", "pushlane-fcm", ("firebase-admin", "firebase-admin-async")),
    "webpush_vs_pywebpush": Comparison("webpush", "pushlane-webpush", ("pywebpush", "pywebpush-async")),
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
        name: (measured["pushlane"]["notifications"], len(measured["pushlane"]["cpu_s_all_runs"]))
        for name, detail in details.items()
        for measured in detail["workloads"].values()
    }

    def said(notifications: int, runs: int) -> str:
        return f"{notifications:,} notifications per side, the least CPU of {runs} run{'s' if runs > 1 else ''}"

    if len(set(how.values())) == 1:
        return said(*next(iter(how.values())))
    return "; ".join(f"`{name}`: {said(*measured)}" for name, measured in how.items())


def _reached(side: dict[str, Any]) -> bool:
    """Whether the emulator accepted exactly what the side counted as delivered."""
    return bool(side["emulator_accepted"] == side["outcomes"].get("delivered", 0))


def figures(results: dict[str, Any]) -> str:
    """docs/PERFORMANCE.md's comparison table and note: every figure and label from ``results``."""
    rows = []
    for name, detail in results["details"].items():
        for workload, measured in detail["workloads"].items():
            ours, peer = measured["pushlane"], measured["peer"]
            rows.append(
                f"| `{name}` | `{workload}` | {_path(peer['side'])}{_slower_paths(measured)} "
                f"| {_rate(ours)} | {_rate(peer)} | **{measured['ratio']:.2f}{TIMES}** |"
            )
    reached = all(
        _reached(side)
        for detail in results["details"].values()
        for measured in detail["workloads"].values()
        for side in (measured["pushlane"], measured["peer"])
    )
    note = (
        f"{_measured_how(results['details'])} (`cpu_s_all_runs` in `bench/results.json` has every run). Each "
        "comparison's figure in `bench/results.json` is its worst workload's ratio. "
        + (
            "In every counted run the emulator accepted exactly what the side counted as delivered."
            if reached
            else "NOT every run's deliveries match the emulator's count: see `outcomes` in the file."
        )
    )
    workloads = "Workloads: " + "; ".join(f"`{w.name}`, {w.description}" for w in WORKLOADS) + "."
    header = "| comparison | workload | peer's path | pushlane (per CPU-s) | peer (per CPU-s) | ratio |"
    return "\n".join([header, "|---|---|---|---|---|---|", *rows, "", workloads, "", note])
