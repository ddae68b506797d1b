"""Where the README and docs/ quote bench/results.json: blocks between two markers that only the bench writes.

A block starts with ``<!-- {name}: written by {command} from bench/results.json -->`` and ends with
``<!-- end of {name} -->``. The bench renders its figures from the results it just wrote and replaces the
block; ``tests/unit/test_readme_figures.py`` renders them again from the file and fails when a block
differs, so no figure in the documents is a hand copy.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results.json"
# A figure's target: (">=" or "<=", the bound).
Targets = Mapping[str, tuple[str, float]]
_SENSES = {">=": "≥", "<=": "≤"}


def merge_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``results`` to bench/results.json, keeping every other key; returns the file as written."""
    written = {**(json.loads(RESULTS.read_text()) if RESULTS.exists() else {}), **results}
    RESULTS.write_text(json.dumps(written, indent=2) + "\n")
    return written


def met(targets: Targets, key: str, value: float) -> bool:
    """Whether a figure meets its target."""
    sense, target = targets[key]
    return value >= target if sense == ">=" else value <= target


def _figure(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) or value >= 1000 else f"{value}"


def target_table(results: Mapping[str, Any], targets: Targets) -> list[str]:
    """The Markdown table of the figures against their targets, as the documents quote them."""
    rows = [
        f"| `{key}` | {_figure(results[key])} | {_SENSES[sense]} {target:,} | "
        f"{'yes' if met(targets, key, results[key]) else 'no'} |"
        for key, (sense, target) in targets.items()
    ]
    return ["| figure | measured | target | met |", "|---|---|---|---|", *rows]


def print_verdicts(results: Mapping[str, Any], targets: Targets) -> None:
    """The figures against their targets on the console."""
    print(f"{'figure':34} {'measured':>10} {'target':>10}")
    for key, (sense, target) in targets.items():
        verdict = "ok" if met(targets, key, results[key]) else "MISSED"
        print(f"{key:34} {results[key]:>10,} {sense + ' ' + str(target):>10}  {verdict}")


@dataclass(frozen=True)
class Block:
    path: Path
    name: str
    command: str

    @property
    def start_marker(self) -> str:
        return f"<!-- {self.name}: written by {self.command} from bench/results.json -->"

    @property
    def end_marker(self) -> str:
        return f"<!-- end of {self.name} -->"

    def _span(self, text: str) -> tuple[int, int]:
        start = text.index(self.start_marker) + len(self.start_marker)
        return start, text.index(self.end_marker, start)

    def read(self) -> str:
        """What the document holds between the markers."""
        text = self.path.read_text()
        start, end = self._span(text)
        return text[start:end].strip("\n")

    def write(self, content: str) -> None:
        text = self.path.read_text()
        start, end = self._span(text)
        self.path.write_text(text[:start] + "\n" + content + "\n" + text[end:])


LOCAL_STACK_FIGURES = Block(REPO / "README.md", "local-stack figures", "python -m bench.local_stack")
PEER_COMPARISONS = Block(REPO / "docs" / "PERFORMANCE.md", "peer comparisons", "python -m bench")
SCALE_FIGURES = Block(REPO / "docs" / "PERFORMANCE.md", "scale figures", "python -m bench.scale_model")
LAYER_FIGURES = Block(REPO / "docs" / "PERFORMANCE.md", "layer figures", "python -m bench.layer")
