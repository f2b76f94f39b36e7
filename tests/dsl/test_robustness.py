"""Any input gives diagnostics, never an exception: random text and bytes, huge and deep inputs."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from segmenta.dsl.parser import parse
from segmenta.dsl.pipeline import check_source
from segmenta.dsl.render import render
from tests.dsl.test_parser import DOCS_EXAMPLE

_RULE_ALPHABET = list("abz_-.:,()=!<>\"'#\n\t 0123456789km万亿") + [
    "segment ", "otherwise ", " -> ", " and ", " or ", " not ", " in ", " between ", " like ", " contains ",
    " is ", " missing", " present", "team ", "tag ", "region", "size", "attr.", "2026-01-31", "\x00", "\ud800",
]


def _assert_well_formed(source: str) -> None:
    result = check_source(source)
    for diagnostic in result.diagnostics:
        assert diagnostic.line >= 1 and diagnostic.column >= 1
        assert (diagnostic.end_line, diagnostic.end_column) > (diagnostic.line, diagnostic.column)
    if any(d.code == "syntax" for d in result.diagnostics):
        assert not result.ok
    render(result.diagnostics, source, "fuzz.seg", color=True)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_random_text_only_gives_diagnostics(source: str) -> None:
    _assert_well_formed(source)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_RULE_ALPHABET), max_size=60).map("".join))
def test_rule_like_noise_only_gives_diagnostics(source: str) -> None:
    _assert_well_formed(source)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_give_diagnostics(data: bytes) -> None:
    _assert_well_formed(data.decode("utf-8", "surrogateescape"))
    _assert_well_formed(data.decode("latin-1"))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(DOCS_EXAMPLE) - 1), st.integers(1, 8), st.sampled_from(["", "(", ")", "->", "=", "and", "\"", "#"]))
def test_damaged_valid_files_report_located_errors(position: int, length: int, insert: str) -> None:
    damaged = DOCS_EXAMPLE[:position] + insert + DOCS_EXAMPLE[position + length :]
    _assert_well_formed(damaged)


def test_deep_nesting_and_long_chains() -> None:
    for source in ("(" * 10_000, ")" * 10_000, "(" * 10_000 + "x" + ")" * 10_000 + " -> team a",
                   "not " * 10_000 + "x -> team a", " and ".join(["x"] * 10_000) + " -> team a",
                   "a -> team x, " + ", ".join(["tag t"] * 5_000)):
        _assert_well_formed(source)


def test_large_inputs_are_handled_in_linear_time() -> None:
    started = time.process_time()
    _, diagnostics = parse("region = east and " * 12_000)  # ~200 KB, one statement that never ends
    assert [d.code for d in diagnostics] == ["syntax"]
    assert "expected" in diagnostics[0].message
    for big in ("\x00" * 1_000_000, "é;" * 500_000, "a -> team x\n" * 10_000):
        _assert_well_formed(big)
    assert time.process_time() - started < 30


def test_nul_characters_and_lone_surrogates_are_located() -> None:
    _, diagnostics = parse("a: region = east\x00 -> team x\nb: city = \ud800 -> team y")
    assert [(d.line, d.message) for d in diagnostics] == [
        (1, "unexpected character U+0000"),
        (2, "unexpected character U+D800"),
    ]
