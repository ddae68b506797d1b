"""cfn-lint, the linter `sam validate --lint` runs, on the real template."""

from pathlib import Path

from cfnlint.api import ManualArgs, lint_file

from tests.infrastructure.conftest import TEMPLATE_PATH


def _problems(path: Path) -> list[str]:
    matches = lint_file(path, ManualArgs(regions=["us-east-1"]))
    # Informational notes are advice; errors and warnings fail `cfn-lint` and CI.
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches if m.rule.severity != "informational"]


def test_cfn_lint_finds_no_errors_or_warnings_in_template_yaml() -> None:
    assert _problems(TEMPLATE_PATH) == []


def test_cfn_lint_as_called_here_does_report_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(
        TEMPLATE_PATH.read_text(encoding="utf-8").replace("Runtime: python3.13", "Runtime: python2.7", 1),
        encoding="utf-8",
    )

    assert any("python2.7" in problem for problem in _problems(broken))
