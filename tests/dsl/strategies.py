"""Hypothesis strategies for syntactically valid rule ASTs (values carry a raw spelling that parses back)."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from segmenta.dsl.ast import (
    Action,
    And,
    Between,
    BoolConst,
    Comparison,
    Condition,
    Contains,
    FieldRef,
    InList,
    Like,
    Not,
    Or,
    Presence,
    Rule,
    SegmentDef,
    SegmentRef,
    Statement,
    Value,
)
from segmenta.dsl.ast_builder import NUMBER_SUFFIXES, parse_number
from segmenta.dsl.fields import FIELDS
from segmenta.dsl.parser import is_bare_word, quote

bare_words = (
    st.tuples(
        st.text(alphabet=st.sampled_from(list("abqz_éЖ华")), min_size=1, max_size=1),
        st.text(alphabet=st.sampled_from(list("abqz_09éЖ东")), max_size=6),
        st.lists(st.text(alphabet=st.sampled_from(list("ab9")), min_size=1, max_size=3), max_size=2),
    )
    .map(lambda parts: parts[0] + parts[1] + "".join("-" + part for part in parts[2]))
    .filter(is_bare_word)
)


@st.composite
def numbers(draw: st.DrawFn) -> Value:
    whole = draw(st.integers(min_value=-10**6, max_value=10**9))
    fraction = draw(st.one_of(st.just(""), st.integers(0, 999).map(lambda n: f".{n}")))
    suffix = draw(st.sampled_from([""] + list(NUMBER_SUFFIXES)))
    raw = f"{whole}{fraction}{suffix}"
    return Value("number", parse_number(raw), raw)


# Any text a stored value can hold: no lone surrogates, no NUL (the parser refuses both in strings).
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
quoted_strings = texts.map(lambda text: Value("text", text, quote(text), quoted=True))
words = bare_words.map(lambda word: Value("text", word, word))
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)).map(
    lambda day: Value("date", day, day.isoformat())
)
booleans = st.sampled_from(["true", "false", "TRUE"]).map(lambda raw: Value("bool", raw.lower() == "true", raw))
values = st.one_of(words, quoted_strings, numbers(), dates, booleans)
fields = st.one_of(st.sampled_from(sorted(FIELDS)), bare_words.map(lambda word: f"attr.{word}")).map(FieldRef)

predicates = st.one_of(
    st.builds(Comparison, fields, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), values),
    st.builds(InList, fields, st.lists(values, min_size=1, max_size=3).map(tuple), st.booleans()),
    st.builds(Between, fields, values, values),
    st.builds(Like, fields, st.one_of(words, quoted_strings)),
    st.builds(Contains, fields, values),
    st.builds(Presence, fields, st.booleans()),
    st.builds(SegmentRef, bare_words),
    st.builds(BoolConst, st.booleans()),
)


def _extend(children: st.SearchStrategy[Condition]) -> st.SearchStrategy[Condition]:
    operands = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(st.builds(Not, children), st.builds(And, operands), st.builds(Or, operands))


conditions = st.recursive(predicates, _extend, max_leaves=8)
targets = st.one_of(bare_words, texts)

@st.composite
def task_actions(draw: st.DrawFn) -> Action:
    """`task KIND [within N days]`: the unit word is the formatter's (`day` for 1, else `days`)."""
    within = draw(st.one_of(st.none(), numbers()))
    unit = None if within is None else ("day" if within.value == 1 else "days")
    return Action("task", draw(targets), within=within, unit=unit)


actions = st.one_of(st.builds(Action, st.sampled_from(["team", "tag", "segment"]), targets), task_actions())
statements: st.SearchStrategy[Statement] = st.one_of(
    st.builds(SegmentDef, bare_words, conditions),
    st.builds(
        Rule,
        conditions,
        st.lists(actions, min_size=1, max_size=3).map(tuple),
        st.one_of(st.none(), bare_words, texts),
    ),
    st.builds(Rule, st.none(), st.lists(actions, min_size=1, max_size=2).map(tuple)),
)
