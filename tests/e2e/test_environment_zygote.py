"""`python -m dev.local_stack` forks its execution environments from one zygote, and Ctrl-C ends them all."""

import os
import time

import requests

from tests.e2e.conftest import start_stack, stop_stack


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, zombies included."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def test_environments_are_forked_by_one_zygote_and_none_outlives_the_stack() -> None:
    running = start_stack(options=("--dynamodb", "moto"))
    try:
        with requests.Session() as session:
            session.trust_env = False
            assert session.get(f"{running.url}/v1/openapi.json", timeout=30).status_code == 200
            described = session.get(f"{running.url}/_local/environments", timeout=30).json()
        factory = described["factory"]
        environments = [env for pool in described["functions"].values() for env in pool["environments"]]
        descendants = _descendants(running.process.pid)

        assert (factory["mode"], factory["disabled"], factory["fallbacks"]) == ("zygote", None, 0)
        assert factory["forks"] >= 1
        assert environments
        assert all(env["forked"] for env in environments)
        assert {factory["pid"], *(env["pid"] for env in environments)} <= descendants
    finally:
        stop_stack(running)

    deadline = time.monotonic() + 5
    while any(_exists(pid) for pid in descendants) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in descendants if _exists(pid)] == []  # ended and reaped: no orphan, no zombie
