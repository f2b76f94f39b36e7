"""Checker: every diagnostic code it produces, with located messages and hints."""

from __future__ import annotations

from segmenta.dsl.checker import check, check_condition
from segmenta.dsl.diagnostics import Diagnostic
from segmenta.dsl.parser import parse, parse_condition


def diagnose(source: str, **known: object) -> list[Diagnostic]:
    rule_file, syntax = parse(source)
    assert syntax == [], syntax
    return check(rule_file, **known)  # type: ignore[arg-type]


def codes(source: str, **known: object) -> list[tuple[str, str]]:
    return [(d.code, d.severity) for d in diagnose(source, **known)]


def test_clean_file_has_no_diagnostics() -> None:
    source = """
    segment big = size >= large or total_spent between 100k and 1亿
    east_big: big and region in (east, 华东) and lifecycle != churned -> team a, tag vip
    birthday_soon: days_to_birthday <= 7 and birthday is present -> tag birthday
    named: name like "A*" and tags contains vip and attr.tier = gold and attr.score > 3 -> segment s
    dated: last_purchase_at < 2025-01-01 and purchasing_power between low and medium -> team b
    otherwise -> team c
    """
    assert diagnose(source) == []


def test_unknown_field_suggests_the_nearest_name() -> None:
    (diagnostic,) = diagnose("a: regoin = east -> team x")
    assert diagnostic.code == "unknown-field" and diagnostic.message == "unknown field `regoin`"
    assert diagnostic.hint == "did you mean `region`?"
    assert (diagnostic.line, diagnostic.column, diagnostic.end_column) == (1, 4, 10)


def test_outputs_are_not_readable_fields() -> None:
    (diagnostic,) = diagnose("manager = bob -> tag x")
    assert diagnostic.code == "unknown-field" and "own outputs" in (diagnostic.hint or "")


def test_type_mismatches() -> None:
    cases = {
        "size > 5 -> team x": "`5` is a number",
        "region > 5 -> team x": "`region` is a text field; `>` needs",
        "region = 5 -> team x": "`5` is a number, expected text",
        "total_spent > east -> team x": "expected a number",
        "birthday < 5 -> team x": "expected a date",
        "tags = vip -> team x": "`tags` is a set",
        "region contains x -> team x": "`contains` works on set fields",
        "age like \"1*\" -> team x": "`like` matches text",
        "size >= huge -> team x": "`size` has no value `huge`",
        "attr.tier > gold -> team x": "expected a number",
        "region between a and b -> team x": "`between` needs",
        "attr.when = 2026-01-01 -> team x": "expected text or a number",
    }
    for source, fragment in cases.items():
        diagnostics = diagnose(source)
        assert [d.code for d in diagnostics] == ["type-mismatch"], source
        assert fragment in diagnostics[0].message, (source, diagnostics[0].message)


def test_unknown_words_of_closed_and_ordered_fields_warn() -> None:
    diagnostics = diagnose("lifecycle = actve or kind in (company, persn) or size = giant -> team x")
    assert [(d.code, d.severity) for d in diagnostics] == [("unknown-value", "warning")] * 3
    assert [d.hint for d in diagnostics][:2] == ["did you mean `active`?", "did you mean `person`?"]


def test_segments_must_be_defined_earlier() -> None:
    diagnostics = diagnose("a: later -> team x\nsegment later = true\nb: nowhere -> team y\nsegment s = s")
    messages = [(d.code, d.line, d.message) for d in diagnostics]
    assert messages[0] == ("unknown-segment", 1, "segment `later` is used before its definition on line 2")
    assert messages[1] == ("unknown-segment", 3, "unknown segment `nowhere`")
    assert messages[2] == ("unknown-segment", 4, "segment `s` refers to itself")


def test_bare_field_name_in_boolean_position_is_explained() -> None:
    (diagnostic,) = diagnose("region -> team x")
    assert diagnostic.code == "unknown-segment"
    assert diagnostic.message.startswith("`region` is a field, not a condition")
    assert "region = east" in (diagnostic.hint or "")


def test_unknown_segment_suggests_defined_segments() -> None:
    diagnostics = diagnose("segment high_value = true\nhigh_valu -> team x")
    assert diagnostics[0].hint == "did you mean `high_value`?"


def test_duplicate_labels_and_segments() -> None:
    diagnostics = diagnose("segment s = true\nsegment s = false\na: s -> team x\na: s -> team y\nsegment region = true")
    assert [(d.code, d.line) for d in diagnostics] == [("duplicate-name", 2), ("duplicate-name", 4), ("duplicate-name", 5)]
    assert "already defined on line 1" in diagnostics[0].message
    assert "already used on line 3" in diagnostics[1].message


def test_otherwise_must_be_last_and_single() -> None:
    diagnostics = diagnose("otherwise -> team a\nx: true -> team b\notherwise -> team c")
    assert sorted((d.code, d.line) for d in diagnostics) == [("otherwise-not-last", 1), ("otherwise-not-last", 3)]


def test_teams_are_checked_only_when_known() -> None:
    assert diagnose("true -> team finanse") == []
    (diagnostic,) = diagnose("true -> team finanse", known_teams={"finance", "general"})
    assert diagnostic.code == "unknown-team" and diagnostic.hint == "did you mean `finance`?"


def test_two_teams_in_one_rule_conflict() -> None:
    (diagnostic,) = diagnose("true -> team a, tag t, team b")
    assert diagnostic.code == "conflicting-actions" and diagnostic.column == 24


def test_values_never_seen_warn_with_the_nearest_known_value() -> None:
    known = {"region": {"east", "west"}, "tags": {"vip"}, "city": set()}
    diagnostics = diagnose("region in (east, eats) and tags contains vipp and city = x -> team a", known_values=known)
    assert [(d.code, d.severity, d.hint) for d in diagnostics] == [
        ("unknown-value", "warning", "did you mean `east`?"),
        ("unknown-value", "warning", "did you mean `vip`?"),
    ]


def test_every_error_is_reported() -> None:
    assert len(diagnose("a: regon = x and size > 5 and nope -> team x\nb: lifecyle = y -> team z")) == 4


def test_check_condition_uses_given_segments() -> None:
    condition, _ = parse_condition("vip and region = east")
    assert condition is not None
    assert check_condition(condition, segments={"vip"}) == []
    assert [d.code for d in check_condition(condition)] == ["unknown-segment"]
