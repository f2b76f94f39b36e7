"""Every GraphQL enum over stored words is checked against the one home of its vocabulary
(schema/enums.py, words_of), and a disagreement stops the schema loading."""

from enum import Enum

import pytest
from strawberry.types.enum import StrawberryEnumDefinition

from segmenta.domain.access.tokens import ROLES
from segmenta.domain.routing.vocabulary import RUN_STATUSES
from segmenta.domain.staff.vocabulary import TEAM_STRATEGIES
from segmenta.dsl.fields import SIZES
from segmenta.schema import schema
from segmenta.schema.enums import (
    VOCABULARY_OF,
    CustomerSize,
    Role,
    RunStatus,
    TeamStrategy,
    VocabularyMismatch,
    words_of,
)

# Enums of the API's own making (sort orders), with no stored vocabulary behind them.
API_ONLY = {"CustomerOrder", "TaskOrder"}


def _schema_enums() -> dict[str, type[Enum]]:
    found = {}
    for graphql_type in schema.schema_converter.type_map.values():
        definition = graphql_type.definition
        if isinstance(definition, StrawberryEnumDefinition):
            found[definition.name] = definition.wrapped_cls
    return found


def test_every_enum_over_stored_words_is_checked_against_its_vocabulary() -> None:
    enums = _schema_enums()
    unchecked = {name for name, enum_type in enums.items() if enum_type not in VOCABULARY_OF} - API_ONLY
    assert unchecked == set()
    for enum_type, vocabulary in VOCABULARY_OF.items():
        assert tuple(member.value for member in enum_type) == vocabulary


@pytest.mark.parametrize(
    ("enum_type", "vocabulary"),
    [(TeamStrategy, TEAM_STRATEGIES), (CustomerSize, SIZES), (RunStatus, RUN_STATUSES), (Role, ROLES)],
)
def test_an_enum_is_checked_against_the_vocabulary_home(enum_type: type[Enum], vocabulary: tuple[str, ...]) -> None:
    assert VOCABULARY_OF[enum_type] is vocabulary


def test_an_enum_that_disagrees_with_its_vocabulary_is_refused() -> None:
    class Strategy(Enum):
        ROUND_ROBIN = "round_robin"
        LEAST_LOADED = "least_loaded"

    with pytest.raises(VocabularyMismatch, match="Strategy"):
        words_of(TEAM_STRATEGIES)(Strategy)

    class Reordered(Enum):
        MANUAL = "manual"
        ROUND_ROBIN = "round_robin"
        LEAST_LOADED = "least_loaded"

    with pytest.raises(VocabularyMismatch):
        words_of(TEAM_STRATEGIES)(Reordered)
