"""The README and docs/PERFORMANCE.md quote the bench's figures as `make bench` last wrote them to results.json."""

import json
import re
from pathlib import Path

from bench import comparisons, layer, scale_document
from bench.documents import LAYER_FIGURES, LOCAL_STACK_FIGURES, PEER_COMPARISONS, RESULTS, SCALE_FIGURES, met
from bench.local_stack import TARGETS, readme_figures

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(
    r"^\| `(?P<key>local_\w+)` \| (?P<value>[\d,.]+) \| (?P<sense>[≥≤]) (?P<target>[\d,]+) \| (?P<met>\w+) \|$"
)


def _readme_rows() -> dict[str, re.Match[str]]:
    return {m["key"]: m for line in README.read_text().splitlines() if (m := ROW.match(line))}


def test_every_local_stack_figure_in_the_readme_is_the_one_in_results_json():
    results = json.loads(RESULTS.read_text())
    rows = _readme_rows()
    assert set(TARGETS) <= set(rows), f"README lacks rows for {sorted(set(TARGETS) - set(rows))}"
    for key, row in rows.items():
        assert key in results, f"{key} is in the README but not in bench/results.json"
        assert float(row["value"].replace(",", "")) == results[key], key
        if key in TARGETS:
            sense, target = TARGETS[key]
            assert (row["sense"], int(row["target"].replace(",", ""))) == ({">=": "≥", "<=": "≤"}[sense], target)
            assert row["met"] == ("yes" if met(TARGETS, key, results[key]) else "no"), key


def test_the_figures_come_with_the_run_that_made_them():
    local = json.loads(RESULTS.read_text())["local_stack"]
    assert local["devices"] == 10000
    assert local["deliveries"] >= 100000
    assert [local[key] for key in TARGETS] == [json.loads(RESULTS.read_text())[key] for key in TARGETS]


def test_the_readmes_local_stack_notes_are_rendered_from_results_json():
    # The table and the notes under it, every figure included, are what the last run's results render to.
    assert LOCAL_STACK_FIGURES.read() == readme_figures(json.loads(RESULTS.read_text()))


def test_the_peer_comparisons_in_performance_md_are_rendered_from_results_json():
    results = json.loads(RESULTS.read_text())
    assert set(results["details"]) == set(comparisons.COMPARISONS)
    assert PEER_COMPARISONS.read() == comparisons.figures(results)


def test_the_scale_figures_in_performance_md_are_rendered_from_results_json():
    assert SCALE_FIGURES.read() == scale_document.figures(json.loads(RESULTS.read_text()))


def test_the_layer_figures_in_performance_md_are_rendered_from_results_json():
    assert LAYER_FIGURES.read() == layer.figures(json.loads(RESULTS.read_text()))
