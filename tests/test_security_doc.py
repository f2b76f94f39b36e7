"""docs/security.md against the code: the roles table says exactly what the schema enforces, and
every cross-reference in the security guide leads somewhere.

The table under "## Roles" with the header `| Operation | admin | manager | agent | viewer |` has
one row per restricted root field.  A row's yes/no cells must equal the roles the field's
RolePermission classes allow (a field with several classes needs all of them); every mutation and
every restricted query or subscription field must have a row; every mutation must declare a role
check at all (a forgotten one would let a viewer write).
"""

from __future__ import annotations

import re
from pathlib import Path

import graphql
import pytest

from segmenta.domain.access.tokens import ROLES
from segmenta.schema import schema
from segmenta.schema.permissions import RolePermission

ROOT = Path(__file__).resolve().parent.parent
SECURITY = ROOT / "docs" / "security.md"
TABLE_HEADER = ("Operation", *ROLES)
ROOT_TYPES = ("Query", "Mutation", "Subscription")


def section(markdown: str, heading: str) -> str:
    """The text under `## heading` up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"docs/security.md has no '## {heading}' section"
    return match.group(1)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def roles_table(markdown: str) -> dict[str, set[str]]:
    """Operation name -> the roles marked `yes`, from the table whose header is TABLE_HEADER."""
    lines = section(markdown, "Roles").splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith("|") and tuple(cells(line)) == TABLE_HEADER]
    assert len(starts) == 1, f"'## Roles' needs exactly one table headed {' | '.join(TABLE_HEADER)}"
    table: dict[str, set[str]] = {}
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        row = cells(line)
        assert len(row) == len(TABLE_HEADER), f"roles table row with {len(row)} cells: {line}"
        name = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", row[0])
        assert name, f"roles table row does not start with a `fieldName`: {line}"
        assert name.group(1) not in table, f"{name.group(1)} has two rows in the roles table"
        marks = row[1:]
        assert set(marks) <= {"yes", "no"}, f"roles table cells must be yes or no: {line}"
        table[name.group(1)] = {role for role, mark in zip(ROLES, marks, strict=True) if mark == "yes"}
    return table


def root_fields() -> dict[str, tuple[str, list[type[RolePermission]]]]:
    """Every root field name -> (its root type, the RolePermission classes it declares)."""
    found: dict[str, tuple[str, list[type[RolePermission]]]] = {}
    for type_name in ROOT_TYPES:
        root = schema._schema.get_type(type_name)
        assert isinstance(root, graphql.GraphQLObjectType)
        for name, field in root.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            declared = getattr(definition, "permission_classes", None) or []
            permissions = [item for item in declared if isinstance(item, type) and issubclass(item, RolePermission)]
            assert name not in found, f"{name} is a field of two root types; the roles table could not tell them apart"
            found[name] = (type_name, permissions)
    return found


def allowed_roles(permissions: list[type[RolePermission]]) -> set[str]:
    allowed = set(ROLES)
    for permission in permissions:
        allowed &= set(permission.roles)
    return allowed


DOC = SECURITY.read_text(encoding="utf-8")
FIELDS = root_fields()


def test_every_mutation_declares_a_role_check() -> None:
    unchecked = sorted(name for name, (kind, permissions) in FIELDS.items() if kind == "Mutation" and not permissions)
    assert not unchecked, f"mutations any role may run: {unchecked}"


def table_problems(markdown: str) -> list[str]:
    """Every way the roles table in `markdown` disagrees with the schema."""
    table = roles_table(markdown)
    needed = {name for name, (kind, permissions) in FIELDS.items() if kind == "Mutation" or permissions}
    problems = [f"no row for {name}" for name in sorted(needed - set(table))]
    problems += [f"a row for {name}, which the schema does not have" for name in sorted(set(table) - set(FIELDS))]
    problems += [
        f"{name}: the table allows {sorted(documented)}, the schema {sorted(allowed_roles(FIELDS[name][1]))}"
        for name, documented in sorted(table.items())
        if name in FIELDS and documented != allowed_roles(FIELDS[name][1])
    ]
    return problems


def test_the_roles_table_matches_the_schema() -> None:
    assert table_problems(DOC) == []


ROW = "| `createCustomer` | yes | yes | no | no |"


@pytest.mark.parametrize(
    ("mistake", "changed"),
    [
        ("an agent allowed to create customers", DOC.replace(ROW, "| `createCustomer` | yes | yes | yes | no |")),
        ("a mutation left out", DOC.replace("| `recordPurchase` | yes | yes | yes | no |\n", "")),
        ("a row for a field that does not exist", DOC.replace(ROW, f"{ROW}\n| `noSuchMutation` | yes | no | no | no |")),
        ("a restricted query left out", DOC.replace("| `apiTokens` | yes | no | no | no |\n", "")),
    ],
)
def test_each_kind_of_mistake_in_the_table_is_caught(mistake: str, changed: str) -> None:
    assert changed != DOC, f"the document no longer has the row this check edits ({mistake})"
    assert table_problems(changed), mistake


@pytest.mark.parametrize(
    ("row", "message"),
    [("| `createCustomer` | yes | maybe | no | no |", "yes or no"), ("| createCustomer | yes | yes | no | no |", "fieldName")],
)
def test_a_malformed_row_is_refused(row: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        roles_table(DOC.replace(ROW, row))


def anchor(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {anchor(match) for match in re.findall(r"^#{1,6} (.+)$", markdown, re.M)}


def test_every_link_in_the_security_guide_leads_to_a_heading() -> None:
    broken = []
    for target, fragment in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", DOC):
        linked = DOC if not target else (SECURITY.parent / target).read_text(encoding="utf-8")
        if fragment not in anchors(linked):
            broken.append(f"{target}#{fragment}")
    assert not broken, f"links to headings that do not exist: {broken}"


def test_the_threat_model_points_every_defence_at_a_section() -> None:
    threats = section(DOC, "Threat model")
    sections = {anchor(heading) for heading in re.findall(r"^## (.+)$", DOC, re.M)} - {"threat-model"}
    pointed = set(re.findall(r"\]\(#([^)\s]+)\)", threats))
    assert sections - pointed == set(), f"sections the threat model never points to: {sorted(sections - pointed)}"
