"""Where the README and docs/ quote bench/results.json: blocks between two markers that only the bench writes.

A block starts with ``<!-- {name}: written by {command} from bench/results.json -->`` and ends with
``<!-- end of {name} -->``. The bench renders its figures from the results it just wrote and replaces the
block; ``tests/unit/test_readme_figures.py`` renders them again from the file and fails when a block
differs, so no figure in the documents is a hand copy.
"""

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
