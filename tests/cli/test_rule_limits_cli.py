"""`segmenta check` and `segmenta explain` on hostile rule files: located diagnostics and exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from segmenta.cli import main
from segmenta.dsl.extent import MAX_DEPTH
from tests.cli.test_explain_cli import _setup
from tests.dsl.test_segment_limits import chain

LONG_CHAIN = chain(400).replace("-> team a,", "-> team senior,")
FIRST_TOO_DEEP = f"policy.seg:{MAX_DEPTH + 1}:15: error[too-deep]: segment chain too deep"


def test_check_reports_a_long_segment_chain(tmp_path: Path) -> None:
    rules = tmp_path / "policy.seg"
    rules.write_text(LONG_CHAIN, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(rules)])
    assert result.exit_code == 1, result.output
    assert FIRST_TOO_DEEP in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_check_reports_segments_that_multiply(tmp_path: Path) -> None:
    rules = tmp_path / "policy.seg"
    rules.write_text(chain(12, " or ".join(["s{previous}"] * 8)), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(rules)])
    assert result.exit_code == 1, result.output
    assert "policy.seg:5:14: error[too-large]" in result.output


def test_explain_reports_a_long_segment_chain(tmp_path: Path) -> None:
    url, rules = _setup(tmp_path, LONG_CHAIN)
    result = CliRunner().invoke(main, ["explain", str(rules), "--customer", "rich", "--database-url", url])
    assert result.exit_code == 1, result.output
    assert FIRST_TOO_DEEP in result.output
    assert isinstance(result.exception, SystemExit)
