"""``python -m dev.local_stack``: pushlane on this machine, no Docker and no AWS account.

Prints ``pushlane is listening on http://HOST:PORT`` once requests can be
served, then the quickstart; stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from dev.local_stack import dynamodb_local, launcher, malloc_settings
from dev.local_stack.emulated_providers import EmulatedProviders, EmulatorProcess, start_emulator_process
from dev.local_stack.environments import DEFAULT_CONCURRENCY, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_QUEUE_CONCURRENCY
from dev.local_stack.template import REPO_ROOT, TemplateError, load_sam_app

_STOP_POLL_S = 0.2  # how soon after Ctrl-C or SIGTERM the stack starts stopping


def _parameter(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dev.local_stack", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="gateway address (default: loopback)")
    parser.add_argument("--port", type=int, default=3000, help="gateway port; 0 picks a free one")
    parser.add_argument("--moto-port", type=int, default=0, help="moto (local AWS) port; 0 picks a free one")
    parser.add_argument(
        "--dynamodb", choices=dynamodb_local.CHOICES, default="auto",
        help="DynamoDB Local, moto, or auto: DynamoDB Local when Java and its jar are here (the default)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
        help="execution environments per function at most, unless the template reserves some (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--queue-concurrency", type=int, default=DEFAULT_QUEUE_CONCURRENCY, metavar="N",
        help="batches an SQS event source runs side by side at most, unless its ScalingConfig says"
        " (default: the machine's cores, at least 2: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_S, metavar="SECONDS",
        help="end an execution environment idle this long (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--stack-name", default="pushlane")
    parser.add_argument(
        "--parameter", type=_parameter, action="append", default=[], metavar="NAME=VALUE",
        help="a template parameter value (repeatable); AdminKeySha256 is generated",
    )  # fmt: skip
    parser.add_argument(
        "--no-emulators", action="store_true",
        help="do not start the APNs/FCM/Web Push/webhook emulators (providers then use the template's URLs)",
    )  # fmt: skip
    return parser.parse_args(argv)


def _fail(message: str) -> int:
    print(f"pushlane: {message}", file=sys.stderr, flush=True)
    return 1


def _new_admin_key(layer_dirs: Sequence[Path]) -> Any:
    """A fresh admin key from the layer's own code (so its format is the one the handlers check)."""
    for layer_dir in layer_dirs:
        if str(layer_dir) not in sys.path:
            sys.path.insert(0, str(layer_dir))
    from push_core.auth import new_admin_key  # importable only once the layer is on sys.path

    return new_admin_key()


def _quickstart(base_url: str, admin_key: str, providers: EmulatorProcess | None) -> str:
    from dev.local_stack import quickstart  # imported when needed: only the command prints it

    section = (
        quickstart.render_providers(str(providers.directory), providers.ca_path, providers.ledger_urls())
        if providers
        else ""
    )
    text: str = quickstart.render(base_url, admin_key, section)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the local stack until Ctrl-C or SIGTERM; 0 on a clean stop, 1 if it could not start."""
    args = _parse_args(argv)
    malloc_settings.apply()
    launcher.use_fake_aws_environment()
    # Warnings and up from libraries (botocore is chatty at INFO); the gateway's access log from here.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dev.local_stack").setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every AWS call there
    for what, host, port in (("gateway", args.host, args.port), ("moto", launcher.MOTO_HOST, args.moto_port)):
        if not launcher.port_is_free(host, port):
            return _fail(f"{host}:{port} is already in use, so the {what} cannot listen there (choose another port)")

    # The handler only records the signal: it runs in the main thread between two bytecodes, and an
    # Event.set() there deadlocked on the lock of the Event.wait() it had interrupted (a stack that
    # ignored Ctrl-C and SIGTERM for good).
    stop_signals: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_signals.append(signum)

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    providers: EmulatorProcess | None = None
    try:
        try:
            app = load_sam_app(args.template)
            admin_key = _new_admin_key(app.layer_dirs)
            # Only templates that declare the provider parameters get emulators (pushlane's does).
            declared = set(app.template.get("Parameters", {}))
            wanted = not args.no_emulators and set(EmulatedProviders.PARAMETERS) <= declared
            providers = start_emulator_process() if wanted else None
            emulated = providers.template_parameters() if providers else {}
            parameters = {**emulated, **dict(args.parameter), "AdminKeySha256": admin_key.sha256}
            stack = launcher.start(
                app,
                parameters,
                host=args.host,
                port=args.port,
                moto_port=args.moto_port,
                stack_name=args.stack_name,
                dynamodb=args.dynamodb,
                concurrency=args.concurrency,
                idle_timeout_s=args.idle_timeout,
                queue_concurrency=args.queue_concurrency,
            )
        except ImportError as error:
            if providers:
                providers.stop()
            return _fail(f"cannot create the admin key ({error})")
        except (OSError, TemplateError, RuntimeError, ValueError) as error:
            if providers:
                providers.stop()
            return _fail(f"could not start: {error}")
        try:
            base_url = f"http://{args.host}:{stack.gateway.port}"
            print(f"pushlane is listening on {base_url}", flush=True)
            print(_quickstart(base_url, admin_key.token, providers), flush=True)
            print(f"# moto (the local AWS) is listening on {stack.moto_url}", flush=True)
            print(
                f"# metrics: {base_url}/_local/metrics, execution environments: {base_url}/_local/environments",
                flush=True,
            )
            print(f"# DynamoDB: {stack.dynamodb.description} (--dynamodb local|moto|auto chooses)", flush=True)
            while not stop_signals:
                time.sleep(_STOP_POLL_S)
        finally:
            stack.stop()
            if providers:
                providers.stop()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
