"""Build the push_core layer the way `sam build` does: template.yaml's `BuildMethod: makefile` runs
`make build-PushCoreLayer` in this folder, which runs this with ARTIFACTS_DIR.

- The packages of requirements.txt, as arm64 (manylinux2014_aarch64) wheels for CPython 3.13, the
  runtime's, into ``python/``; then the distributions the Lambda runtime already ships are removed
  (RUNTIME_PROVIDED): a copy in the layer comes first on sys.path and would shadow the runtime's, and
  aws-lambda-powertools' tracer extra pulls in its own botocore (a third of the layer, in a version
  outside the range the runtime's boto3 declares).
- The push_core package, then every module compiled to bytecode by CPython 3.13 (unchecked hashes: the
  layer is read-only, so the interpreter need not stat the sources), which spares each cold start the
  compilation (1.05-1.16 s of imports without bytecode, measured by the filer of issue 11).
"""

from __future__ import annotations

import argparse
import compileall
import json
import py_compile
import shutil
import subprocess
import sys
from email.parser import HeaderParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNTIME = "3.13"
PLATFORM = "manylinux2014_aarch64"  # template.yaml: BuildArchitecture arm64 (x86_64 builds are for measuring here)
# What the python3.13 runtime has under /var/runtime (the AWS SDK and its dependencies): never in the layer.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"})


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def distributions(site: Path) -> dict[str, Path]:
    """The distributions installed in ``site``: normalized name -> its .dist-info folder."""
    found = {}
    for info in site.glob("*.dist-info"):
        metadata = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        found[_normalized(metadata["Name"])] = info
    return found


def _remove_distribution(site: Path, info: Path) -> None:
    """Delete every file the distribution's RECORD lists, and its metadata."""
    for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
        relative = line.split(",", 1)[0]
        if relative:
            (site / relative).unlink(missing_ok=True)
    shutil.rmtree(info, ignore_errors=True)


def _remove_empty_folders(site: Path) -> None:
    """Deepest first, so a folder emptied by its children's removal goes too."""
    for folder in sorted((p for p in site.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def install(site: Path, platform: str = PLATFORM) -> None:
    subprocess.run(  # noqa: S603 - pip, with our own requirements file
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(site), "--platform", platform, "--implementation", "cp",
            "--python-version", RUNTIME, "--only-binary=:all:", "-r", str(HERE / "requirements.txt"),
        ],
        check=True,
    )  # fmt: skip
    for name, info in distributions(site).items():
        if name in RUNTIME_PROVIDED:
            _remove_distribution(site, info)
    _remove_empty_folders(site)


def size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def build(artifacts: Path, platform: str = PLATFORM) -> dict[str, object]:
    """Fill ``artifacts/python`` and say what it holds."""
    if sys.version_info[:2] != (3, 13):
        raise SystemExit(f"the layer's bytecode is for CPython {RUNTIME}: run this with python{RUNTIME}")
    site = artifacts / "python"
    install(site, platform)
    shutil.copytree(HERE / "push_core", site / "push_core", ignore=shutil.ignore_patterns("__pycache__"))
    compiled = compileall.compile_dir(
        site, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    if not compiled:
        raise SystemExit("some module of the layer does not compile")
    return {"layer_mb": size_mb(site), "distributions": sorted(distributions(site))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, help="where sam build wants the layer (ARTIFACTS_DIR)")
    parser.add_argument("--platform", default=PLATFORM, help=f"the wheels' platform tag (default {PLATFORM})")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.artifacts, args.platform)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
