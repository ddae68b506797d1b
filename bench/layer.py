"""The deployed layer's size and each handler's cold import time, as `make bench` reports them.

`layer_mb`: the layer `sam build` makes (layers/push_core/Makefile, arm64), unzipped. `cold_import_ms`: the
slowest handler's import in a fresh CPython 3.13 process, with the path Lambda gives it (the function's code,
the layer's ``python/``, then the runtime's AWS SDK, here the boto3 of requirements-dev.txt installed for
3.13), the best of five runs each. This machine is x86_64, so the import runs on the same layer built for
x86_64 wheels; its disk cache is warm, so the figure is a floor for a Lambda cold start's import phase.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.documents import LAYER_FIGURES, merge_results, print_verdicts, target_table

REPO = Path(__file__).resolve().parents[1]
LAYER_SOURCE = REPO / "layers" / "push_core"
RUNS = 5
TARGETS = {"cold_import_ms": ("<=", 250), "layer_mb": ("<=", 25)}
_IMPORT = (
    "import sys, time; sys.path[:0] = sys.argv[1:4]; started = time.perf_counter(); import app; "
    "print((time.perf_counter() - started) * 1000)"
)


def _make_layer(artifacts: Path, platform: str | None = None) -> dict[str, Any]:
    env = {**os.environ, "ARTIFACTS_DIR": str(artifacts), **({"PLATFORM": platform} if platform else {})}
    done = subprocess.run(  # noqa: S603 - sam build's own step
        ["make", "--no-print-directory", "-C", str(LAYER_SOURCE), "build-PushCoreLayer"],  # noqa: S607
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def python313() -> str | None:
    """The CPython 3.13 the layer's Makefile builds with, or None when this machine has none."""
    done = subprocess.run(  # noqa: S603 - our own Makefile
        ["make", "-s", "--no-print-directory", "-C", str(LAYER_SOURCE), "python313"],  # noqa: S607
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or None


def _runtime_sdk(python: str, target: Path) -> None:
    """The AWS SDK the runtime ships, as /var/runtime holds it: boto3 at the version the tests use."""
    pinned = next(
        line.strip() for line in (REPO / "requirements-dev.txt").read_text().splitlines() if line.startswith("boto3==")
    )
    subprocess.run(  # noqa: S603 - pip
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target), pinned],
        check=True, capture_output=True,
    )  # fmt: skip


def measure() -> dict[str, Any]:
    python = python313()
    if python is None:
        raise SystemExit("python3.13 is needed to build and time the layer")
    with tempfile.TemporaryDirectory(prefix="pushlane-layer-") as scratch:
        root = Path(scratch)
        deployed = _make_layer(root / "arm64")
        _make_layer(root / "here", platform="manylinux2014_x86_64")
        _runtime_sdk(python, root / "runtime")
        env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
        imports = {}
        for function in sorted(path for path in (REPO / "functions").iterdir() if (path / "app.py").is_file()):
            runs = [
                float(
                    subprocess.run(  # noqa: S603 - python3.13 importing our handler
                        [python, "-c", _IMPORT, str(function), str(root / "here" / "python"), str(root / "runtime")],
                        capture_output=True,
                        text=True,
                        check=True,
                        env=env,
                        cwd=scratch,
                    ).stdout
                )
                for _ in range(RUNS)
            ]
            imports[function.name] = round(min(runs), 1)
    return {
        "layer_mb": deployed["layer_mb"],
        "cold_import_ms": max(imports.values()),
        "layer": {
            "distributions": deployed["distributions"],
            "import_ms": imports,
            "median_ms": statistics.median(imports.values()),
        },
    }


def figures(results: dict[str, Any]) -> str:
    """docs/PERFORMANCE.md's layer table and note, every figure from ``results``."""
    imports = ", ".join(f"{name} {ms:,} ms" for name, ms in results["layer"]["import_ms"].items())
    return "\n".join(
        [
            *target_table(results, TARGETS),
            "",
            f"Each handler's import on CPython 3.13, the best of {RUNS} fresh processes: {imports}.",
        ]
    )


def main() -> int:
    results = measure()
    print_verdicts(results, TARGETS)
    print("import ms by function:", results["layer"]["import_ms"])
    LAYER_FIGURES.write(figures(merge_results(results)))
    print("wrote bench/results.json and docs/PERFORMANCE.md's layer figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
