"""`like` patterns as regular expressions that match in linear time.

`*` matches any run of characters, `?` exactly one, everything else itself; the
whole value must match, case-sensitively.  A straight translation (`*` -> `.*`)
backtracks: with k stars Python's engine tries O(n^k) splits of a text of length
n that does not match, so a dozen stars in one pattern hold a request for minutes.

Between two stars every segment has a fixed length, so placing each middle segment
at its leftmost occurrence never loses a match: an earlier end only leaves more
room for the rest.  Each middle segment therefore becomes an atomic group
`(?>.*?SEGMENT)`, which finds that leftmost occurrence and is never re-entered;
the last segment, anchored at the end by fullmatch, is the only place the engine
backtracks, over one `.*`.  Matching costs O(len(text) * len(pattern)).
"""

from __future__ import annotations

import re

WILDCARDS = frozenset("*?")


def _segment(text: str) -> str:
    return "".join("." if char == "?" else re.escape(char) for char in text)


def like_regex(pattern: str) -> re.Pattern[str]:
    """The pattern as a regex; use its `fullmatch` (the whole value must match)."""
    segments = pattern.split("*")
    if len(segments) == 1:
        return re.compile(_segment(pattern), re.DOTALL)
    first, *middle, last = segments
    parts = [_segment(first)]
    parts += [f"(?>.*?{_segment(segment)})" for segment in middle if segment]
    parts.append(".*" + _segment(last))
    return re.compile("".join(parts), re.DOTALL)


def is_plain(pattern: str) -> bool:
    """True when the pattern has no wildcard: it matches exactly the text equal to it."""
    return WILDCARDS.isdisjoint(pattern)


def contained_text(pattern: str) -> str | None:
    """X when the pattern is `*X*` with X free of wildcards (a substring test), else None."""
    if len(pattern) > 2 and pattern[0] == pattern[-1] == "*" and is_plain(pattern[1:-1]):
        return pattern[1:-1]
    return None
