"""The `-> task KIND [within N days]` action: syntax, checks, formatting, evaluation and explanation."""

from __future__ import annotations

import pytest

from segmenta.dsl import TaskOutcome, compile_rules
from segmenta.dsl.formatter import format_source
from segmenta.dsl.pipeline import check_source

RULES = """
birthday: days_to_birthday <= 7 -> task birthday_greeting within 3 days, tag celebrate
east: region = east -> team east_team, task birthday_greeting within 10 days
complaints: open_complaints > 0 -> task complaint_follow_up within 1 day
otherwise -> team pool, task "regular visit"
"""


def test_tasks_are_additive_and_the_first_matching_rule_gives_rule_and_due_days() -> None:
    rules = compile_rules(RULES)
    outcome = rules.evaluate({"region": "east", "open_complaints": 2, "days_to_birthday": 3})
    assert outcome.team == "east_team"
    assert outcome.tasks == (
        TaskOutcome("birthday_greeting", "birthday", 3),
        TaskOutcome("complaint_follow_up", "complaints", 1),
    )
    # Without `within`, a week; `otherwise` gives its task to the customers no team rule took.
    assert rules.evaluate({"region": "west"}).tasks == (TaskOutcome("regular visit", "line 5", 7),)
    assert rules.evaluate({"region": "east"}).tasks == (TaskOutcome("birthday_greeting", "east", 10),)
    assert rules.task_kinds == ("birthday_greeting", "complaint_follow_up", "regular visit")


def test_explain_says_which_rule_gives_which_task() -> None:
    explanation = compile_rules(RULES).explain({"region": "east", "days_to_birthday": 3})
    assert "Tasks: birthday_greeting within 3 days (rule birthday)" in explanation.lines
    east = next(trace for trace in explanation.rules if trace.label == "east")
    assert east.detail.endswith("task birthday_greeting already given by birthday")
    birthday = next(trace for trace in explanation.rules if trace.label == "birthday")
    assert "gives task birthday_greeting (due in 3 days)" in birthday.detail


@pytest.mark.parametrize(
    ("source", "at", "code", "message"),
    [
        ("a -> task call within 0 days", "0", "bad-task-due", "whole number from 1 to 3650"),
        ("a -> task call within -2 days", "-2", "bad-task-due", "whole number from 1 to 3650"),
        ("a -> task call within 1.5 days", "1.5", "bad-task-due", "whole number from 1 to 3650"),
        ("a -> task call within 3651 days", "3651", "bad-task-due", "whole number from 1 to 3650"),
        ("a -> task call within 2 weeks", "weeks", "bad-task-due", "the unit is `days`"),
        ('a -> task "" within 2 days', "task", "bad-task-kind", "1 to 100 characters"),
        ("a -> task " + "k" * 101, "task", "bad-task-kind", "1 to 100 characters"),
    ],
)
def test_bad_task_actions_are_located_errors(source: str, at: str, code: str, message: str) -> None:
    diagnostics = check_source("segment a = region = east\nb: " + source).diagnostics
    errors = [d for d in diagnostics if d.is_error]
    assert [d.code for d in errors] == [code]
    assert (errors[0].line, errors[0].column) == (2, len("b: ") + source.index(at) + 1)
    assert message in errors[0].message


def test_unknown_kinds_are_fine_and_task_is_a_keyword() -> None:
    assert not check_source("region = east -> task anything_at_all").diagnostics
    wrong = check_source("region = task -> tag x").diagnostics
    assert wrong and wrong[0].code == "syntax" and "keyword" in (wrong[0].hint or "")
    missing_comma = check_source("region = east -> tag x task y").diagnostics
    assert [(d.code, d.message) for d in missing_comma] == [("syntax", "expected `,` before `task`")]


def test_formatting_normalises_the_action_and_round_trips() -> None:
    source = "A: region=east -> TASK call_back WITHIN 1 DAYS,task visit   within 3 Day\nregion = west -> task visit\n"
    formatted = format_source(source)
    assert formatted == "A: region = east -> task call_back within 1 day, task visit within 3 days\nregion = west -> task visit\n"
    assert format_source(formatted) == formatted
    assert check_source(source).rule_file.statements == check_source(formatted).rule_file.statements  # type: ignore[union-attr]


def test_a_kind_given_again_with_other_due_days_is_an_info() -> None:
    diagnostics = check_source(RULES).diagnostics
    overlaps = [d for d in diagnostics if d.code == "task-due-overlap"]
    assert [(d.severity, d.line) for d in overlaps] == [("info", 3)]
    assert "also given by `birthday` (line 2), due in 3 days" in overlaps[0].message
    same = check_source("a: region = east -> task call\nb: size = large -> task call within 7 days").diagnostics
    assert not [d for d in same if d.code == "task-due-overlap"]
