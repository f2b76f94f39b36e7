"""Every top-level error code a client can meet is in the error table of docs/graphql.md ("Errors"),
and a document that is not GraphQL is told apart from one that does not match the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.schema.helpers import Api

GRAPHQL_DOC = Path(__file__).resolve().parents[2] / "docs" / "graphql.md"


def documented_codes() -> set[str]:
    section = GRAPHQL_DOC.read_text(encoding="utf-8").split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", section, re.M))


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ customers( }", "GRAPHQL_PARSE_FAILED"),
        ("query {", "GRAPHQL_PARSE_FAILED"),
        ("{ a " + "b " * 5_001 + "}", "GRAPHQL_PARSE_FAILED"),
        ("{ nosuchfield }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ customer { id } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_a_bad_document_gets_a_documented_code(api: Api, document: str, code: str) -> None:
    [error] = await api.errors(document)
    assert error["extensions"]["code"] == code
    assert error["locations"], error
    assert code in documented_codes()


def test_the_codes_the_schema_raises_are_documented() -> None:
    from segmenta.schema import errors, limits, node, where

    raised = {
        errors.BAD_USER_INPUT, errors.UNAUTHENTICATED, errors.FORBIDDEN, errors.INTERNAL,
        errors.GRAPHQL_VALIDATION_FAILED, errors.GRAPHQL_PARSE_FAILED, limits.QUERY_TOO_COMPLEX,
        where.INVALID_CONDITION, node.TOO_MANY_IDS,
    }
    assert raised <= documented_codes(), raised - documented_codes()
