"""The customer CSV format, shared by import (csv_import.py) and export (csv_export.py).

Columns are the customer fields (docs/domain.md, 'Data model') by their snake_case names, `tags` as one
cell separated by `;`, and one `attr.KEY` column per custom attribute.  Export adds
`team` (team key), `manager` (manager e-mail) and `assignment_locked`; import accepts
and ignores those three, because assignment is the rules' (or assignManager's) job.

Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab or carriage return as
a formula.  Export therefore writes such a text cell with a leading apostrophe, which
spreadsheets take to mean "this is text" and do not display (OWASP's advice for CSV
injection); so does a text starting with an apostrophe itself, and an attribute text
that would otherwise read back as a number or as no value.  Import removes one leading
apostrophe from every text cell, as a spreadsheet does when it is typed, and takes an
attribute cell that had one as text: export then import changes nothing.  Numbers and
dates are not text cells and are written as they are.  `raw` exports and imports skip
both steps, for programs that read the file themselves.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from segmenta.domain.customers.metrics import PROFILE_FIELDS
from segmenta.domain.errors import UserError
from segmenta.domain.validation import MAX_NUMBER

# The profile columns of the data model, in the order the rule language lists them.
FIELD_COLUMNS: tuple[str, ...] = PROFILE_FIELDS
TAGS_COLUMN = "tags"
TAG_SEPARATOR = ";"
ASSIGNMENT_COLUMNS: tuple[str, ...] = ("team", "manager", "assignment_locked")
ATTRIBUTE_PREFIX = "attr."
NUMBER_COLUMNS = frozenset({"age", "income"})
# Cells written by format_value from numbers, dates and booleans: never a formula, never marked.
NOT_TEXT_COLUMNS = NUMBER_COLUMNS | {"birthday", "created_at", "assignment_locked"}
KNOWN_COLUMNS = frozenset(FIELD_COLUMNS) | {TAGS_COLUMN} | frozenset(ASSIGNMENT_COLUMNS)

# A plain decimal number; an attribute cell that is one is stored as a number, otherwise as text.
# (Stricter than float(): "nan", "inf" and "1_000" stay text.)
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class RowError:
    """A problem in the file: `line` is the 1-based line where the CSV record starts."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class CellError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True)
class CsvRow:
    line: int
    cells: list[str]
    # Positions of attribute cells that are text whatever they look like (they had a TEXT_MARK).
    literal: frozenset[int] = frozenset()


# -- spreadsheet formulas ----------------------------------------------------------------------

# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A leading apostrophe: a spreadsheet shows the rest of the cell as text.
TEXT_MARK = "'"


def neutralised(text: str) -> str:
    """A text cell as export writes it: marked when a spreadsheet would run it or drop its apostrophe."""
    return TEXT_MARK + text if text.startswith((*FORMULA_STARTS, TEXT_MARK)) else text


def attribute_text_cell(text: str) -> str:
    """An attribute's text value; also marked when import would otherwise take it for a number or for no value."""
    if PLAIN_NUMBER.fullmatch(text.strip()) or not text.strip():
        return TEXT_MARK + text
    return neutralised(text)


def unmarked_row(line: int, header: Sequence[str], cells: list[str]) -> CsvRow:
    """The row with one leading apostrophe taken off every text cell; marked attribute cells stay text."""
    marked = [position for position, cell in enumerate(cells) if cell[:1] == TEXT_MARK]
    if not marked:  # most rows: nothing to take off
        return CsvRow(line, cells)
    plain = list(cells)
    literal: set[int] = set()
    for position in marked:
        column = header[position] if position < len(header) else ""
        if column in NOT_TEXT_COLUMNS:
            continue
        plain[position] = cells[position][len(TEXT_MARK) :]
        if column.startswith(ATTRIBUTE_PREFIX):
            literal.add(position)
    return CsvRow(line, plain, frozenset(literal))


# -- header ------------------------------------------------------------------------------------


def check_header(header: Sequence[str], *, update: bool) -> list[RowError]:
    """Errors of the header line (line 1): unknown, repeated or missing columns."""
    errors: list[RowError] = []
    seen: set[str] = set()
    for column in header:
        if column in seen:
            errors.append(RowError(1, column, "column appears more than once"))
        seen.add(column)
        if column in KNOWN_COLUMNS:
            continue
        if column.startswith(ATTRIBUTE_PREFIX) and len(column) > len(ATTRIBUTE_PREFIX):
            continue
        hint = difflib.get_close_matches(column, sorted(KNOWN_COLUMNS), n=1)
        suffix = f"; did you mean {hint[0]}?" if hint else f"; custom attributes are {ATTRIBUTE_PREFIX}KEY"
        errors.append(RowError(1, column or "(empty)", f"unknown column{suffix}"))
    required = ("code",) if update else ("code", "name")
    for column in required:
        if column not in seen:
            errors.append(RowError(1, column, f"required column {column} is missing"))
    return errors


# -- cells -------------------------------------------------------------------------------------


def _number_cell(column: str, raw: str) -> float:
    stripped = raw.strip()
    if not PLAIN_NUMBER.fullmatch(stripped):
        raise CellError(column, f"{column} must be a number, got {raw!r}")
    return float(stripped)


def attribute_value(raw: str) -> str | float:
    """A number when the cell is a plain decimal number within the numbers' limit, the text otherwise.

    A longer run of digits (an account number, say) stays text: as a number it would be
    refused, or rounded.
    """
    stripped = raw.strip()
    if not PLAIN_NUMBER.fullmatch(stripped):
        return raw
    value = float(stripped)
    return value if abs(value) <= MAX_NUMBER else raw


def split_tags(raw: str) -> list[str]:
    return [tag.strip() for tag in raw.split(TAG_SEPARATOR) if tag.strip()]


def parse_cells(
    header: Sequence[str], cells: Sequence[str], *, patch: bool, literal: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """The service input for one row.

    For a new customer empty cells are left out; for an update (`patch`) every column
    of the file is set, an empty cell clearing that field (tags emptied, attribute removed).
    Attribute cells at the `literal` positions are text as they stand.
    """
    if len(cells) != len(header):
        raise CellError("", f"the row has {len(cells)} cells but the header has {len(header)} columns")
    data: dict[str, Any] = {}
    attributes: dict[str, str | float | None] = {}
    for position, (column, raw) in enumerate(zip(header, cells, strict=True)):
        empty = raw.strip() == ""
        if column in ASSIGNMENT_COLUMNS:
            continue
        if column.startswith(ATTRIBUTE_PREFIX):
            key = column[len(ATTRIBUTE_PREFIX) :]
            if position in literal:
                attributes[key] = raw
            elif not empty:
                attributes[key] = attribute_value(raw)
            elif patch:
                attributes[key] = None
        elif column == TAGS_COLUMN:
            if not empty or patch:
                data["tags"] = split_tags(raw)
        elif empty:
            if patch:
                data[column] = None
        elif column in NUMBER_COLUMNS:
            data[column] = _number_cell(column, raw)
        else:
            data[column] = raw
    if attributes:
        data["attributes"] = attributes
    return data


def column_of(error: UserError, header: Sequence[str]) -> str | None:
    """The CSV column a service error points at."""
    if error.field is None:
        return None
    if error.field == "attributes":
        for column in header:
            if not column.startswith(ATTRIBUTE_PREFIX):
                continue
            key = column[len(ATTRIBUTE_PREFIX) :]
            if repr(key) in error.message or f"attributes.{key} " in error.message:
                return column
    return error.field



def records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (quoted cells may span lines)."""
    reader = csv.reader(lines, strict=True)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UserError(f"line {reader.line_num}: malformed CSV: {error}", code="malformed_csv") from error
        start = previous_end + 1
        previous_end = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        yield start, cells


def format_value(value: Any) -> str:
    """One cell: empty for missing, ISO dates, whole numbers without `.0`, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)
