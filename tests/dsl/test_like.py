"""`like` matches in linear time with the semantics of both SQL back ends (`*` any run, `?` one character)."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from segmenta.dsl import compile_rules
from segmenta.dsl.like import like_regex
from segmenta.dsl.parser import quote
from segmenta.dsl.pipeline import check_source

# Twelve stars held the server 16 s and fifteen about half an hour with the old
# straight translation (`*` -> `.*`), on texts far shorter than this one.
PATHOLOGICAL = "*a" * 15 + "*b"
LONG_TEXT = "a" * 100_000
# Generous for a loaded 2-core machine; the match takes about a millisecond.
BOUND_SECONDS = 2.0


def reference_match(pattern: str, text: str) -> bool:
    """Textbook dynamic programme: matches[j] is whether pattern[:i] matches text[:j]."""
    matches = [True] + [False] * len(text)
    for char in pattern:
        if char == "*":
            for j in range(1, len(text) + 1):
                matches[j] = matches[j] or matches[j - 1]
        else:
            matches = [False] + [
                matches[j] and (char == "?" or char == text[j]) for j in range(len(text))
            ]
    return matches[len(text)]


def backtracking_regex(pattern: str) -> re.Pattern[str]:
    """The translation `like` used before: correct, but exponential in the number of stars."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def test_many_stars_over_a_long_text_take_linear_time() -> None:
    matcher = like_regex(PATHOLOGICAL).fullmatch
    assert _timed(lambda: matcher(LONG_TEXT)) < BOUND_SECONDS
    assert matcher(LONG_TEXT) is None
    assert matcher(LONG_TEXT + "b") is not None
    many = "*a" * 200 + "*b"
    assert _timed(lambda: like_regex(many).fullmatch(LONG_TEXT)) < BOUND_SECONDS


def test_the_old_translation_is_exponential_in_the_stars() -> None:
    """Why the test above matters: the old regex needs more work for each star even on 60 characters.

    Counted, not timed: the backtracking engine's work shows in how much slower each
    extra star makes it; the new matcher's cost does not depend on the star count.
    """
    text = "a" * 60
    two_stars = min(_timed(lambda: backtracking_regex("*a*a*b").fullmatch(text)) for _ in range(3))
    four_stars = _timed(lambda: backtracking_regex("*a*a*a*a*b").fullmatch(text))
    assert four_stars > 20 * two_stars  # about 1,000x here: each star multiplies the work by ~len(text)
    new = [min(_timed(lambda k=k: like_regex("*a" * k + "*b").fullmatch(text)) for _ in range(3)) for k in (2, 4)]
    assert new[1] < 20 * new[0]
    assert backtracking_regex("*a" * 4 + "*b").fullmatch(text) is None  # same answer, only slower


def test_the_compiled_evaluator_and_explain_stay_fast() -> None:
    rules = compile_rules(f'r: name like "{PATHOLOGICAL}" -> team a\notherwise -> team b\n')
    customer = {"name": LONG_TEXT}
    assert _timed(lambda: rules.decide(customer)) < BOUND_SECONDS
    assert rules.evaluate(customer).team == "b"
    assert _timed(lambda: rules.explain(customer)) < BOUND_SECONDS
    assert rules.evaluate({"name": LONG_TEXT + "b"}).team == "a"


def test_analysis_stays_fast_on_a_pathological_pattern() -> None:
    """The analysis pass matches like patterns against the file's own literals."""
    word = "a" * 20_000
    source = f'r: name like "{PATHOLOGICAL}" and name = "{word}" -> team a\ns: name = "{word}" -> team b\n'
    assert _timed(lambda: check_source(source)) < 5 * BOUND_SECONDS


def test_a_pattern_without_wildcards_is_a_plain_comparison() -> None:
    rules = compile_rules('r: name like "a.b[c]%_" -> team a\n')
    assert "==" in rules.compiled.source_code and "fullmatch" not in rules.compiled.source_code
    assert rules.evaluate({"name": "a.b[c]%_"}).team == "a"
    assert rules.evaluate({"name": "a.b[c]%_ "}).team is None


def test_a_star_on_both_sides_is_a_substring_test() -> None:
    rules = compile_rules('r: name like "*a.b*" -> team a\n')
    assert " in " in rules.compiled.source_code and "fullmatch" not in rules.compiled.source_code
    assert [rules.evaluate({"name": name}).team for name in ("a.b", "xa.by", "axb", "", None)] == ["a", "a", None, None, None]


@settings(max_examples=150, deadline=None)
@given(pattern=st.text(st.sampled_from(list("ab*?.")), max_size=7), text=st.text(st.sampled_from(list("ab.")), max_size=8))
def test_the_compiled_evaluator_agrees_with_the_textbook_matcher(pattern: str, text: str) -> None:
    """Covers the shortcuts the evaluator takes (equality, substring) as well as the regex."""
    rules = compile_rules(f"r: name like {quote(pattern)} -> team a\n")
    assert (rules.evaluate({"name": text}).team == "a") == reference_match(pattern, text)


_ALPHABET = st.sampled_from(list("ab*?.\\[]%_\n华"))


@settings(max_examples=400, deadline=None)
@given(pattern=st.text(_ALPHABET, max_size=10), text=st.text(st.sampled_from(list("ab?*.\n华")), max_size=12))
def test_agrees_with_the_textbook_matcher(pattern: str, text: str) -> None:
    assert (like_regex(pattern).fullmatch(text) is not None) == reference_match(pattern, text)


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(st.sampled_from(list("ab*?")), max_size=8), text=st.text(st.sampled_from(list("ab")), max_size=10))
def test_agrees_with_the_old_translation(pattern: str, text: str) -> None:
    assert (like_regex(pattern).fullmatch(text) is not None) == (backtracking_regex(pattern).fullmatch(text) is not None)
