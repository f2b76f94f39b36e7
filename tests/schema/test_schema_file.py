"""schema.graphql, at the repository root, is the printed SDL of the code-first schema (schema/), so
clients and reviewers can read the API without running the server, and a change to it shows in a
diff. And every element of the schema has a description: GraphiQL's docs explorer is where its users
read what a field means.

After changing the schema, regenerate the file (from the repository root) and commit it:

    .venv/bin/python tests/schema/test_schema_file.py
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    is_introspection_type,
)

from segmenta.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = ".venv/bin/python tests/schema/test_schema_file.py"
DIFF_LINES = 40


def printed_schema() -> str:
    return schema.as_str() + "\n"


def undocumented(graphql_schema: GraphQLSchema) -> list[str]:
    """Every type (introspection's aside), field, argument, input field and enum value without a
    description, as `Type`, `Type.field`, `Type.field(argument)` or `Enum.VALUE`."""

    def blank(description: str | None) -> bool:
        return not (description or "").strip()

    missing: list[str] = []
    for name, graphql_type in sorted(graphql_schema.type_map.items()):
        if is_introspection_type(graphql_type):
            continue
        if blank(graphql_type.description):
            missing.append(name)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in graphql_type.fields.items():
                if blank(field.description):
                    missing.append(f"{name}.{field_name}")
                missing.extend(
                    f"{name}.{field_name}({argument_name})"
                    for argument_name, argument in field.args.items()
                    if blank(argument.description)
                )
        elif isinstance(graphql_type, GraphQLInputObjectType):
            missing.extend(
                f"{name}.{field_name}" for field_name, field in graphql_type.fields.items() if blank(field.description)
            )
        elif isinstance(graphql_type, GraphQLEnumType):
            missing.extend(
                f"{name}.{value_name}" for value_name, value in graphql_type.values.items() if blank(value.description)
            )
    return missing


def test_schema_file_is_the_printed_schema() -> None:
    expected = printed_schema()
    if not SCHEMA_FILE.exists():
        pytest.fail(f"{SCHEMA_FILE.name} is missing: create it with `{REGENERATE}` and commit it")
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    if committed != expected:
        diff = list(
            difflib.unified_diff(
                committed.splitlines(), expected.splitlines(), "schema.graphql", "schema/ (printed)", lineterm=""
            )
        )
        shown = "\n".join(diff[:DIFF_LINES]) + ("\n…" if len(diff) > DIFF_LINES else "")
        pytest.fail(
            f"schema.graphql is not the schema the code defines: regenerate it with `{REGENERATE}` "
            f"and commit it.\n{shown}"
        )


def test_every_element_of_the_schema_has_a_description() -> None:
    missing = undocumented(build_schema(printed_schema()))
    assert not missing, (
        f"{len(missing)} schema elements have no description (strawberry.type/field/argument/enum_value "
        "description=…):\n" + "\n".join(missing)
    )


def test_the_check_names_each_element_without_a_description() -> None:
    sdl = '''
        """A query."""
        type Query {
          """Described."""
          thing(
            """Described."""
            described: Int
            bare: Int
          ): Thing
          bareField(filter: Filter): Int
        }
        type Thing { id: ID }
        """Described."""
        input Filter { bare: Int }
        """Described."""
        enum Color {
          """Described."""
          RED
          BLUE
        }
        """Described."""
        scalar Stamp
        scalar BareStamp
        """Described."""
        interface Named {
          """Described."""
          name: String
        }
        type Query2 implements Named { name: String }
    '''
    found = undocumented(build_schema(sdl))
    assert found == [
        "BareStamp",
        "Color.BLUE",
        "Filter.bare",
        "Query.thing(bare)",
        "Query.bareField",
        "Query.bareField(filter)",
        "Query2",
        "Query2.name",
        "Thing",
        "Thing.id",
    ]


if __name__ == "__main__":
    SCHEMA_FILE.write_text(printed_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
