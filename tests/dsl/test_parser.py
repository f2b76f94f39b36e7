"""Parser unit tests: one construct at a time, spans, numbers, and error recovery."""

from __future__ import annotations

from datetime import date

import pytest

from segmenta.dsl.ast import (
    Action,
    And,
    Between,
    BoolConst,
    Comparison,
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
    Span,
    Value,
)
from segmenta.dsl.parser import parse, parse_condition

# The example at the top of docs/rule-language.md.
DOCS_EXAMPLE = """\
# reusable, named conditions; each also maintains a dynamic segment of that key
segment high_value = total_spent >= 100k or purchase_count >= 20
segment at_risk    = days_since_purchase > 180 and open_complaints > 0

# routing rules: [label:] condition -> action, action ...
enterprise_east: size = large and region = east -> team senior_sales
finance: industry in (finance, insurance) and high_value -> team finance_desk, tag vip
recovery: at_risk -> team customer_success, tag needs_call
size = small and region = 华东 -> team east_standard
otherwise -> team general_pool
"""


def condition_of(text: str):  # type: ignore[no-untyped-def]
    condition, diagnostics = parse_condition(text)
    assert diagnostics == [], diagnostics
    assert condition is not None
    return condition


def word(text: str) -> Value:
    return Value("text", text, text)


def number(raw: str, value: float) -> Value:
    return Value("number", value, raw)


def test_spec_example_parses_into_every_statement() -> None:
    rule_file, diagnostics = parse(DOCS_EXAMPLE)
    assert diagnostics == []
    kinds = [type(statement).__name__ for statement in rule_file.statements]
    assert kinds == ["SegmentDef", "SegmentDef", "Rule", "Rule", "Rule", "Rule", "Rule"]
    high_value = rule_file.statements[0]
    assert isinstance(high_value, SegmentDef)
    assert high_value.name == "high_value"
    assert high_value.condition == Or(
        (
            Comparison(FieldRef("total_spent"), ">=", number("100k", 100000.0)),
            Comparison(FieldRef("purchase_count"), ">=", number("20", 20.0)),
        )
    )
    finance = rule_file.statements[3]
    assert isinstance(finance, Rule)
    assert finance.label == "finance"
    assert finance.condition == And(
        (InList(FieldRef("industry"), (word("finance"), word("insurance"))), SegmentRef("high_value"))
    )
    assert finance.actions == (Action("team", "finance_desk"), Action("tag", "vip"))
    unlabelled = rule_file.statements[5]
    assert isinstance(unlabelled, Rule) and unlabelled.label is None
    assert unlabelled.display_name == "line 9"
    otherwise = rule_file.statements[6]
    assert isinstance(otherwise, Rule) and otherwise.is_otherwise
    assert otherwise.team == "general_pool"


def test_spans_are_one_based_with_exclusive_end_in_characters() -> None:
    rule_file, _ = parse("seg: region = 华东 -> team a\n  x = 1 -> tag b")
    first, second = rule_file.statements
    assert isinstance(first, Rule) and isinstance(second, Rule)
    assert first.label_span == Span(1, 1, 1, 4)
    comparison = first.condition
    assert isinstance(comparison, Comparison)
    assert comparison.subject.span == Span(1, 6, 1, 12)
    assert comparison.value.span == Span(1, 15, 1, 17)  # two characters, whatever their byte length
    assert first.actions[0].span == Span(1, 21, 1, 27)
    assert first.span == Span(1, 1, 1, 27)
    assert second.span == Span(2, 3, 2, 17)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("100k", 100_000.0), ("1.5m", 1_500_000.0), ("10万", 100_000.0), ("2亿", 200_000_000.0),
     ("42", 42.0), ("0.25", 0.25), ("-3", -3.0), ("7K", 7000.0)],
)
def test_number_suffixes(raw: str, expected: float) -> None:
    assert condition_of(f"total_spent > {raw}") == Comparison(FieldRef("total_spent"), ">", number(raw, expected))


def test_dates_words_with_dashes_and_strings() -> None:
    assert condition_of("birthday < 2026-01-31").value == Value("date", date(2026, 1, 31), "2026-01-31")  # type: ignore[union-attr]
    assert condition_of("region = north-east").value == word("north-east")  # type: ignore[union-attr]
    quoted = condition_of('city = "New \\"York\\""').value  # type: ignore[union-attr]
    assert quoted.value == 'New "York"' and quoted.quoted
    single = condition_of("city = 'it\\'s'").value  # type: ignore[union-attr]
    assert single.value == "it's"
    assert condition_of("region = 'and'").value.value == "and"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("size != small", Comparison(FieldRef("size"), "!=", word("small"))),
        ("size <= large", Comparison(FieldRef("size"), "<=", word("large"))),
        ("region in (east, 'west')", InList(FieldRef("region"), (word("east"), Value("text", "west", "'west'", quoted=True)))),
        ("region not in (east)", InList(FieldRef("region"), (word("east"),), negated=True)),
        ("age between 18 and 30", Between(FieldRef("age"), number("18", 18.0), number("30", 30.0))),
        ('name like "A*"', Like(FieldRef("name"), Value("text", "A*", '"A*"', quoted=True))),
        ("tags contains vip", Contains(FieldRef("tags"), word("vip"))),
        ("email is missing", Presence(FieldRef("email"), False)),
        ("email IS PRESENT", Presence(FieldRef("email"), True)),
        ("attr.tier = gold", Comparison(FieldRef("attr.tier"), "=", word("gold"))),
        ("true", BoolConst(True)),
        ("FALSE", BoolConst(False)),
        ("vip", SegmentRef("vip")),
        ("not vip", Not(SegmentRef("vip"))),
    ],
)
def test_each_predicate(text: str, expected: object) -> None:
    assert condition_of(text) == expected


def test_precedence_not_over_and_over_or() -> None:
    a, b, c = SegmentRef("a"), SegmentRef("b"), SegmentRef("c")
    assert condition_of("a or b and c") == Or((a, And((b, c))))
    assert condition_of("not a and b") == And((Not(a), b))
    assert condition_of("(a or b) and c") == And((Or((a, b)), c))
    assert condition_of("a and b and c") == And((a, b, c))
    assert condition_of("(a and b) and c") == And((And((a, b)), c))


def test_between_and_is_not_the_boolean_and() -> None:
    expected = And((Between(FieldRef("size"), word("small"), word("large")), SegmentRef("vip")))
    assert condition_of("size between small and large and vip") == expected


def test_keywords_are_case_insensitive_and_words_containing_them_are_not_keywords() -> None:
    assert condition_of("android AND segmentation") == And((SegmentRef("android"), SegmentRef("segmentation")))


def test_statement_boundaries_need_no_newlines() -> None:
    rule_file, diagnostics = parse("a -> team x b: c -> tag y segment s = d otherwise -> team z")
    assert diagnostics == []
    assert [type(s).__name__ for s in rule_file.statements] == ["Rule", "Rule", "SegmentDef", "Rule"]


def test_segment_followed_by_a_rule_starting_with_not() -> None:
    rule_file, diagnostics = parse("segment a = b\nnot c -> team x\nsegment d = e not in (f)")
    assert diagnostics == []
    first, second, third = rule_file.statements
    assert isinstance(first, SegmentDef) and first.condition == SegmentRef("b")
    assert isinstance(second, Rule) and second.condition == Not(SegmentRef("c"))
    assert isinstance(third, SegmentDef) and third.condition == InList(FieldRef("e"), (word("f"),), negated=True)


def test_quoted_labels_and_targets() -> None:
    rule_file, diagnostics = parse('"east china": region = 华东 -> team "East Team", tag \'needs call\', segment s')
    assert diagnostics == []
    (rule,) = rule_file.statements
    assert isinstance(rule, Rule)
    assert rule.label == "east china"
    assert rule.actions == (Action("team", "East Team"), Action("tag", "needs call"), Action("segment", "s"))


def test_comments_and_newlines_are_whitespace() -> None:
    rule_file, diagnostics = parse("# top\nbig: size >= large # trailing\n  and vip\n  -> team x # end")
    assert diagnostics == []
    (rule,) = rule_file.statements
    assert isinstance(rule, Rule) and rule.condition == And(
        (Comparison(FieldRef("size"), ">=", word("large")), SegmentRef("vip"))
    )


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("region = -> team x", "expected a value after `=`, found `->`", 10),
        ("region = east team x", "expected `->`, `and` or `or` after `east`, found the keyword `team`", 15),
        ("region = east ->", "expected an action after `->`, found the end of the file", 17),
        ("region = east -> team", "expected a team name after `team`, found the end of the file", 22),
        ("region in east -> team a", "expected `(` after `in`, found `east`", 11),
        ("email is nothing -> team a", "expected `missing` or `present` after `is`, found `nothing`", 10),
        ("a -> team x tag y", "expected `,` before `tag`", 13),
        ("size between small large -> team a", "expected `and` after `small`, found `large`", 20),
    ],
)
def test_syntax_messages_say_what_was_expected(source: str, message: str, column: int) -> None:
    rule_file, diagnostics = parse(source)
    assert [(d.code, d.message, d.column) for d in diagnostics] == [("syntax", message, column)]


def test_keyword_as_value_hints_to_quote_it() -> None:
    _, diagnostics = parse("region = in -> team a")
    assert diagnostics[0].hint == '`in` is a keyword; write "in" to use it as a value'


def test_every_broken_statement_is_reported_and_the_good_ones_kept() -> None:
    source = "\n".join(
        [
            "one: region = = east -> team a",
            "two: size = large -> team b",
            "three: x > -> team c",
            "segment s = ",
            "four: vip -> team d",
            'five: city = "open -> team e',
            "six: total_spent > 10q -> team f",
            "seven: birthday > 2026-13-01 -> team g",
            "otherwise -> team z",
        ]
    )
    rule_file, diagnostics = parse(source)
    assert [d.line for d in diagnostics] == [1, 3, 5, 6, 7, 8]
    assert all(d.code == "syntax" and d.severity == "error" for d in diagnostics)
    kept = [s.display_name for s in rule_file.statements]
    assert kept == ["two", "four", "line 9"]


def test_bad_characters_are_located() -> None:
    _, diagnostics = parse("a: region = east; -> team x")
    assert [(d.message, d.column, d.end_column) for d in diagnostics] == [("unexpected character `;`", 17, 18)]


def test_nesting_limits_instead_of_recursion_errors() -> None:
    _, diagnostics = parse("(" * 10_000 + "x" + ")" * 10_000 + " -> team a")
    assert [d.code for d in diagnostics] == ["syntax"] and "nesting too deep" in diagnostics[0].message
    _, diagnostics = parse("not " * 10_000 + "x -> team a")
    assert "nesting too deep" in diagnostics[0].message
    rule_file, diagnostics = parse("(" * 50 + "x" + ")" * 50 + " -> team a")
    assert diagnostics == [] and rule_file.statements[0].condition == SegmentRef("x")  # type: ignore[union-attr]


def test_errors_stop_after_a_limit_on_garbage() -> None:
    _, diagnostics = parse("; " * 100_000)
    assert 1 < len(diagnostics) <= 102
    assert diagnostics[-1].message.startswith("too many syntax errors")


def test_parse_condition_rejects_trailing_text() -> None:
    condition, diagnostics = parse_condition("region = east west")
    assert condition is None
    assert diagnostics[0].message == "unexpected `west` after the condition"


def test_a_rule_starting_with_not_after_a_segment_keeps_every_span() -> None:
    # Backing off at `not` on a new line once copied tokens without their end positions (crash in Span.cover).
    source = "segment s = address = x and y\nnot address = z -> team t\n"
    rule_file, diagnostics = parse(source)
    assert diagnostics == []
    assert [statement.span for statement in rule_file.statements] == [Span(1, 1, 1, 30), Span(2, 1, 2, 26)]
    condition = rule_file.statements[0].condition
    assert condition.span == Span(1, 13, 1, 30)
