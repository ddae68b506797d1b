"""`python -m dev.emulators`: start the four emulators, print one JSON line describing them, run until stopped."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import FrameType

from dev.emulators.suite import DEFAULT_KEY_ID, DEFAULT_PROJECT_ID, DEFAULT_TEAM_ID, DEFAULT_TOPICS, EmulatorSuite


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dev.emulators",
        description="Loopback APNs, FCM, Web Push and webhook emulators (TLS, 127.0.0.1).",
    )
    for name in ("apns", "fcm", "webpush", "webhook"):
        parser.add_argument(f"--{name}-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument("--team-id", default=DEFAULT_TEAM_ID)
    parser.add_argument("--key-id", default=DEFAULT_KEY_ID)
    parser.add_argument("--topic", action="append", dest="topics", help="APNs topic (repeatable)")
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID)
    parser.add_argument("--ledger-keep", type=int, default=None, help="keep only the newest N ledger entries")
    parser.add_argument(
        "--exit-with-parent", action="store_true",
        help="stop when the process that started this one ends (a service's emulators never outlive it)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run until a signal; 0 on a clean stop, 2 when a port cannot be bound."""
    args = _arguments(argv)
    parent = os.getppid()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    suite = EmulatorSuite(
        apns_port=args.apns_port,
        fcm_port=args.fcm_port,
        webpush_port=args.webpush_port,
        webhook_port=args.webhook_port,
        seed=args.seed,
        team_id=args.team_id,
        key_id=args.key_id,
        topics=tuple(args.topics) if args.topics else DEFAULT_TOPICS,
        project_id=args.project_id,
        ledger_keep=args.ledger_keep,
    )
    try:
        suite.start()
    except OSError as exc:
        suite.authority.cleanup()
        print(f"emulators: cannot listen: {exc}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(suite.describe(), separators=(",", ":")), flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            if args.exit_with_parent and os.getppid() != parent:
                break  # the parent died without stopping us (killed): we were handed to another process
    finally:
        suite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
