"""Diagnostics for terminals, laid out like a compiler's:

    rules.seg:3:30: error[unknown-field]: unknown field `regon`
       3 | enterprise: size = large and regon = east -> team x
         |                              ^^^^^
         = hint: did you mean `region`?
"""

from __future__ import annotations

from collections.abc import Iterable

from segmenta.dsl.diagnostics import Diagnostic
from segmenta.dsl.parser import display_width

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_COLOURS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m"}
_GUTTER = "\033[1;34m"
_CONTEXT = 60  # characters of a long line shown on each side of the span
_MAX_UNDERLINE = 80


def _printable(text: str) -> str:
    """The line as a terminal shows it: tabs as one space (keeps carets aligned), control characters as `?`."""
    return "".join(
        " " if char == "\t" else char if char.isprintable() or char == " " else "?"
        for char in text.encode("utf-8", "replace").decode("utf-8")
    )


def render_diagnostic(diagnostic: Diagnostic, lines: list[str], path: str = "<rules>", *, color: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        return f"{style}{text}{_RESET}" if color else text

    severity = paint(diagnostic.severity, _COLOURS[diagnostic.severity])
    header = f"{paint(f'{path}:{diagnostic.line}:{diagnostic.column}:', _BOLD)} {severity}"
    header += f"{paint(f'[{diagnostic.code}]', _DIM)}: {_printable(diagnostic.message)}"
    out = [header]
    if 1 <= diagnostic.line <= len(lines):
        line = lines[diagnostic.line - 1]
        start = max(diagnostic.column - 1, 0)
        end = diagnostic.end_column - 1 if diagnostic.end_line == diagnostic.line else len(line)
        end = max(end, start + 1)
        # A window of a long line around the span, so huge lines stay readable (and cheap).
        shown_from = max(0, start - _CONTEXT)
        shown_to = min(len(line), max(end, start + 1) + _CONTEXT, start + _CONTEXT + _MAX_UNDERLINE)
        prefix = "..." if shown_from > 0 else ""
        text = prefix + _printable(line[shown_from:shown_to]) + ("..." if shown_to < len(line) else "")
        start, end = start - shown_from + len(prefix), min(end, shown_to) - shown_from + len(prefix)
        number = str(diagnostic.line)
        pad = " " * len(number)
        caret = " " * display_width(text[:start]) + "^" * max(display_width(text[start:end]), 1)
        out.append(f"{paint(f' {number} |', _GUTTER)} {text}")
        out.append(f"{paint(f' {pad} |', _GUTTER)} {paint(caret, _COLOURS[diagnostic.severity])}")
        if diagnostic.hint:
            out.append(f"{paint(f' {pad} =', _GUTTER)} {paint('hint:', _BOLD)} {_printable(diagnostic.hint)}")
    elif diagnostic.hint:
        out.append(f"  = {paint('hint:', _BOLD)} {_printable(diagnostic.hint)}")
    return "\n".join(out)


def summary(diagnostics: Iterable[Diagnostic]) -> str:
    counts = {"error": 0, "warning": 0, "info": 0}
    for diagnostic in diagnostics:
        counts[diagnostic.severity] += 1
    if not any(counts.values()):
        return "no problems found"
    parts = [f"{count} {name}{'s' if count != 1 else ''}" for name, count in counts.items() if count]
    return ", ".join(parts)


def render(diagnostics: Iterable[Diagnostic], source: str, path: str = "<rules>", *, color: bool = False) -> str:
    """All diagnostics, each with its source line and underline, then a one-line summary."""
    diagnostics = list(diagnostics)
    lines = source.split("\n")
    blocks = [render_diagnostic(diagnostic, lines, path, color=color) for diagnostic in diagnostics]
    blocks.append(f"{path}: {summary(diagnostics)}")
    return "\n\n".join(blocks) + "\n"
