"""Syntax errors in plain words: what the parser expected where it stopped, and hints
for the usual slips (a keyword used as a value, `==`, a list without parentheses).
"""

from __future__ import annotations

from lark import Token

# The reserved words: the tokenizer retypes them, and a message names one used as a value.
KEYWORDS = frozenset(
    "and or not in between like contains is missing present segment team tag task within otherwise true false".split()
)

END = "$END"  # lark's name for the end of the input

_VALUE_TERMINALS = {"WORD", "STRING", "NUMBER", "DATE"}
_CONDITION_STARTS = {"NOT", "LPAR", "WORD", "ATTR"}
_OPERATORS = {"EQ", "IN", "BETWEEN", "IS"}
_SYMBOLS = {
    "ARROW": "->", "LE": "<=", "GE": ">=", "NE": "!=", "LT": "<", "GT": ">", "EQ": "=",
    "COLON": ":", "COMMA": ",", "LPAR": "(", "RPAR": ")",
}
ACTION_WORDS = {"TEAM": "a team name", "TAG": "a tag name", "SEGMENT": "a segment name", "TASK": "a task kind"}


def _short(token: Token) -> str:
    text = str(token)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_token(token: Token | None) -> str:
    if token is None:
        return "the end of the file"
    kind = token.type
    text = str(token)
    if len(text) > 40:
        text = text[:37] + "..."
    if kind in _SYMBOLS:
        return f"`{text}`"
    if kind.lower() in KEYWORDS:
        return f"the keyword `{text}`"
    if kind == "STRING":
        return f"the string {text}"
    if kind in ("NUMBER", "DATE"):
        return f"the {kind.lower()} `{text}`"
    if kind == "ATTR":
        return f"the field `{text}`"
    return f"`{text}`"


def _expected(choices: set[str]) -> str:
    parts: list[str] = []
    if _VALUE_TERMINALS <= choices:
        parts.append("a value")
    elif _CONDITION_STARTS <= choices:
        parts.append("a condition")
    if _OPERATORS <= choices:
        parts.append("an operator (`=`, `!=`, `<`, `in`, `between`, `like`, `contains`, `is`, ...)")
    named = [
        ("COLON", "`:`"), ("ARROW", "`->`"), ("AND", "`and`"), ("OR", "`or`"), ("RPAR", "`)`"),
        ("COMMA", "`,`"), ("EQ", "`=`"), ("LPAR", "`(`"), ("IN", "`in`"), ("MISSING", "`missing`"),
        ("PRESENT", "`present`"),
    ]
    for kind, words in named:
        covered = (kind == "EQ" and _OPERATORS <= choices) or (
            kind == "LPAR" and _CONDITION_STARTS <= choices
        )
        if kind in choices and not covered:
            parts.append(words)
    if {"TEAM", "TAG"} <= choices:
        parts.append("an action (`team`, `tag`, `segment` or `task` and a name)")
    if not parts and "WORD" in choices:
        parts.append("a name")
    if not parts:
        parts = sorted(f"`{_SYMBOLS.get(kind, kind.lower())}`" for kind in choices if kind.isupper() and kind != END)
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def syntax_message(choices: set[str], found: Token | None, previous: Token | None) -> tuple[str, str | None]:
    """A plain-words message (and hint) for `found` arriving where only `choices` fit."""
    hint: str | None = None
    found_kind = found.type if found is not None else END
    if previous is not None and previous.type in ACTION_WORDS and "WORD" in choices:
        what, after = ACTION_WORDS[previous.type], f" after `{previous}`"
    elif previous is not None and previous.type == "IS":
        what, after = "`missing` or `present`", " after `is`"
        if found_kind == "NOT":
            hint = "write `is present` for `is not missing`, `is missing` for `is not present`"
    elif previous is not None and previous.type == "ARROW":
        what, after = "an action", " after `->`"
        hint = "actions are `team NAME`, `tag NAME`, `segment NAME` or `task KIND [within N days]`, separated by commas"
    else:
        what = _expected(choices)
        after = f" after `{_short(previous)}`" if previous is not None else ""
    message = f"expected {what}{after}, found {describe_token(found)}"
    if found is not None and found_kind.lower() in KEYWORDS and _VALUE_TERMINALS <= choices:
        hint = f'`{found}` is a keyword; write "{found}" to use it as a value'
    elif found is not None and "ARROW" in choices and found_kind in ("TEAM", "TAG"):
        hint = "put `->` between the condition and the actions"
    elif found_kind == "EQ" and previous is not None and previous.type == "EQ":
        hint = "equality is a single `=`"
    elif found_kind in ("NUMBER", "DATE", "STRING") and _CONDITION_STARTS <= choices:
        hint = "a condition starts with the field: `total_spent >= 100k`"
    elif previous is not None and previous.type == "IN" and found_kind != "LPAR":
        hint = "a list is written in parentheses: `region in (east, west)`"
    return message, hint
