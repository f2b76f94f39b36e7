"""Golden files: tests/dsl/cases/NAME.seg is checked and compared with NAME.expected.json.

An optional NAME.known.json gives what a database would know: {"teams": [...], "values": {field: [...]}}.
Regenerate after an intended change with SEGMENTA_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from segmenta.dsl.pipeline import check_source

CASES = Path(__file__).with_name("cases")
SEG_FILES = sorted(CASES.glob("*.seg"))
# Analysis messages belong to dsl/analysis.py; here only where and what they report is pinned.
ANALYSIS_CODES = {"shadowed-rule", "contradiction", "overlap"}


def _comparable(diagnostic: dict[str, Any]) -> dict[str, Any]:
    if diagnostic["code"] in ANALYSIS_CODES:
        return {key: diagnostic[key] for key in ("severity", "code", "line", "column")}
    return diagnostic


def _check(path: Path) -> list[dict[str, Any]]:
    known_path = path.with_suffix(".known.json")
    known: dict[str, Any] = json.loads(known_path.read_text("utf-8")) if known_path.exists() else {}
    result = check_source(
        path.read_text("utf-8"),
        known_teams=known.get("teams"),
        known_values=known.get("values"),
    )
    return [diagnostic.to_dict() for diagnostic in result.diagnostics]


def test_there_are_enough_cases_covering_every_code() -> None:
    assert len(SEG_FILES) >= 15
    codes = {d["code"] for path in SEG_FILES for d in json.loads(path.with_suffix(".expected.json").read_text("utf-8"))}
    mine = {"syntax", "unknown-field", "type-mismatch", "unknown-segment", "duplicate-name", "otherwise-not-last",
            "unknown-team", "unknown-value", "conflicting-actions"}
    assert mine <= codes


@pytest.mark.parametrize("path", SEG_FILES, ids=[path.stem for path in SEG_FILES])
def test_golden(path: Path) -> None:
    actual = _check(path)
    expected_path = path.with_suffix(".expected.json")
    if os.environ.get("SEGMENTA_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(actual, ensure_ascii=False, indent=2) + "\n", "utf-8")
    expected = json.loads(expected_path.read_text("utf-8"))
    assert [_comparable(d) for d in actual] == [_comparable(d) for d in expected]


def test_clean_cases_have_no_errors() -> None:
    for name in ("spec_example", "all_predicates", "comments_and_layout"):
        result = check_source((CASES / f"{name}.seg").read_text("utf-8"))
        assert result.ok, (name, result.errors)
