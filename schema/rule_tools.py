"""Queries an editor of rule files needs (the workbench, docs/workbench.md): `ruleFields`, the field
catalogue with the values seen in the data, and `formatRules`, the canonical layout of a file.

Thin over dsl/fields.py (the catalogue), dsl/formatter.py and storage/catalog.py (values seen).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.fields import ATTRIBUTE_FIELD, ATTRIBUTE_PREFIX, FIELD_KINDS, FIELDS, OPERATORS, FieldSpec
from segmenta.dsl.formatter import format_source
from segmenta.schema.context import Info
from segmenta.schema.enums import words_of
from segmenta.schema.errors import client_error
from segmenta.schema.routing import MAX_SOURCE_LENGTH
from segmenta.schema.routing_types import Diagnostic
from segmenta.storage.catalog import load_known

# Values seen per field, at most: enough to complete a word, bounded for fields with many values.
MAX_KNOWN_VALUES = 200


@words_of(FIELD_KINDS)
@strawberry.enum(description="What kind of values a rule field holds, which decides the operators it takes.")
class RuleFieldKind(Enum):
    _value_: str
    TEXT = strawberry.enum_value("text", description="Words; `values` lists them when the field is closed.")
    ORDERED = strawberry.enum_value("ordered", description="Words in a declared order (`values`, lowest first).")
    NUMBER = strawberry.enum_value("number", description="A number (money fields are exact amounts).")
    DATE = strawberry.enum_value("date", description="A date, written YYYY-MM-DD.")
    SET = strawberry.enum_value("set", description="A set of words, tested with `contains`.")
    ATTRIBUTE = strawberry.enum_value("attribute", description="A custom attribute: text or a number.")


@strawberry.type(description="A field a rule can read (docs/rule-language.md, 'Fields').")
class RuleField:
    name: str = strawberry.field(description="The name as written in a rule, e.g. `total_spent` or `attr.tier`.")
    kind: RuleFieldKind = strawberry.field(description="What kind of values it holds.")
    description: str = strawberry.field(description="What it means, in plain words.")
    unit: str | None = strawberry.field(
        description="What its numbers count in (`days`, `money`, `score 1–5`) or `date`; null when none."
    )
    money: bool = strawberry.field(description="True for exact amounts of money (compared as exact decimals).")
    derived: bool = strawberry.field(description="True for day counts measured when the rules are evaluated.")
    operators: list[str] = strawberry.field(
        description="The operators it takes, as written: `=`, `!=`, `<`, `in`, `not in`, `between`, `like`, `contains`, `is missing`…"
    )
    closed: bool = strawberry.field(description="True when only the words in `values` are accepted.")
    values: list[str] = strawberry.field(description="The words it takes (lowest first for ordered fields); empty when open.")
    known_values: list[str] = strawberry.field(
        description=(
            f"Values seen in the data, sorted, at most {MAX_KNOWN_VALUES}, for text fields, sets and text attributes; "
            "empty for other fields, and for an agent's token (whose view is its own customers)."
        )
    )


@strawberry.type(description="The result of formatRules.")
class FormattedRules:
    source: str | None = strawberry.field(
        description="The file in its canonical layout (as `segmenta fmt` writes it); null when it has syntax errors."
    )
    changed: bool = strawberry.field(description="True when the layout differs from the text sent.")
    diagnostics: list[Diagnostic] = strawberry.field(
        description="The syntax errors that prevent formatting; empty when `source` is set."
    )


def _field(name: str, spec: FieldSpec, known: set[str]) -> RuleField:
    return RuleField(
        name=name,
        kind=RuleFieldKind(spec.kind),
        description=spec.description,
        unit=spec.unit or None,
        money=spec.money,
        derived=spec.derived,
        operators=list(OPERATORS[spec.kind]),
        closed=bool(spec.values),
        values=list(spec.values),
        known_values=sorted(known)[:MAX_KNOWN_VALUES],
    )


@strawberry.type
class RuleToolsQuery:
    @strawberry.field(
        description=(
            "Every field a rule can read, with its kind, meaning, unit, operators and the values seen in the data; "
            "custom attributes appear as `attr.KEY` for each key that has a text value."
        )
    )
    async def rule_fields(self, info: Info) -> list[RuleField]:
        principal = info.context.principal
        if principal is not None and principal.role == "agent":
            known: dict[str, set[str]] = {}
        else:
            # load_known only needs execute/scalars, which the serialised request session provides.
            _teams, known = await load_known(info.context.db)  # type: ignore[arg-type]
        fields = [_field(name, spec, known.get(name, set())) for name, spec in FIELDS.items()]
        attributes = sorted(name for name in known if name.startswith(ATTRIBUTE_PREFIX))
        fields.extend(_field(name, ATTRIBUTE_FIELD, known[name]) for name in attributes)
        return fields

    @strawberry.field(description="A rule file in its canonical layout (as `segmenta fmt` writes it); nothing is saved.")
    def format_rules(
        self,
        source: Annotated[str, strawberry.argument(description="The rule file text (at most 200,000 characters).")],
    ) -> FormattedRules:
        if len(source) > MAX_SOURCE_LENGTH:
            raise client_error(f"rule source too long ({len(source)} characters; at most {MAX_SOURCE_LENGTH})")
        try:
            formatted = format_source(source)
        except RuleError as error:
            diagnostics = [Diagnostic.from_dict(item.to_dict()) for item in error.diagnostics]
            return FormattedRules(source=None, changed=False, diagnostics=diagnostics)
        return FormattedRules(source=formatted, changed=formatted != source, diagnostics=[])
