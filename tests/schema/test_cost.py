"""The operation measure (schema/cost.py): depth, aliases and cost, fragments counted as written out."""

from __future__ import annotations

import time

import pytest
from graphql import get_introspection_query, parse
from hypothesis import given, settings
from hypothesis import strategies as st

from segmenta.schema import schema
from segmenta.schema.cost import CEILING, LIST_SIZE_ESTIMATE, Measure, measure_operation
from segmenta.schema.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

SCHEMA = schema._schema


def measure(document: str, variables: dict[str, object] | None = None, operation_name: str | None = None) -> Measure:
    return measure_operation(SCHEMA, parse(document), variables, operation_name)


def fan_out(levels: int, leaf: str = "stats { customerCount }") -> str:
    """The attacker's document: each fragment spreads the one below it twice, `{ ...F<levels> }`."""
    lines = [f"fragment F0 on Query {{ {leaf} }}"]
    lines += [f"fragment F{index} on Query {{ ...F{index - 1} ...F{index - 1} }}" for index in range(1, levels + 1)]
    return "\n".join(lines) + f"\n{{ ...F{levels} }}"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # Every field costs 1; a leaf adds no depth.
        ("{ stats { customerCount } }", Measure(cost=2, depth=1)),
        ("{ __typename }", Measure(cost=1, depth=0)),
        # A connection multiplies what it selects by `first`; its own lists are that page.
        ("{ customers(first: 10) { edges { node { code } } } }", Measure(cost=1 + 10 * (1 + 1 + 1), depth=3)),
        ("{ customers(first: 10) { totalCount nodes { code name } } }", Measure(cost=1 + 10 * (1 + 1 + 2), depth=2)),
        # No `first`: the default page; `first` over the largest page: the largest page.
        ("{ customers { nodes { code } } }", Measure(cost=1 + DEFAULT_PAGE_SIZE * 2, depth=2)),
        ("{ customers(first: 5000) { nodes { code } } }", Measure(cost=1 + MAX_PAGE_SIZE * 2, depth=2)),
        # Nested connections multiply.
        (
            "{ customers(first: 10) { nodes { team { customers(first: 7) { nodes { code } } } } } }",
            Measure(cost=1 + 10 * (1 + 1 + 1 + 7 * (1 + 1)), depth=5),
        ),
        # The example of docs/graphql.md.
        (
            "{ customers(first: 100) { nodes { team { customers(first: 100) { nodes { code } } } } } }",
            Measure(cost=20_301, depth=5),
        ),
        # A list of objects that is not a connection counts LIST_SIZE_ESTIMATE items.
        ("{ teams { key } }", Measure(cost=1 + LIST_SIZE_ESTIMATE, depth=1)),
        # Aliases are counted where they are written.
        ("{ a: stats { customerCount } b: stats { n: customerCount } }", Measure(cost=4, depth=1, aliases=3)),
        # An inline fragment adds its fields, not a level.
        ("{ ... on Query { stats { customerCount } } }", Measure(cost=2, depth=1)),
    ],
)
def test_documents_measure_as_written(document: str, expected: Measure) -> None:
    assert measure(document) == expected


def test_a_fragment_counts_once_per_spread() -> None:
    document = """
        fragment Page on CustomerConnection { nodes { code } }
        fragment Two on Query { a: customers(first: 3) { ...Page } b: customers(first: 4) { ...Page } }
        { ...Two ...Two }
    """
    single = (1 + 3 * 2) + (1 + 4 * 2)
    # Spread twice in one selection set, Two selects `a` and `b` there twice each.
    assert measure(document) == Measure(cost=2 * single, depth=2, aliases=4, duplicates=1)


@pytest.mark.parametrize(
    ("document", "duplicates"),
    [
        ("{ stats { customerCount } }", 0),
        ("{ a: stats { customerCount } b: stats { customerCount } }", 0),
        ("{ stats { customerCount } stats { customerCount customerCount } }", 1),
        ("{ id: __typename __typename ... on Query { __typename } }", 1),
        # Through fragments, at the level they are spread, and nested levels count on their own.
        ("fragment S on Query { stats { customerCount } } { stats { customerCount } ...S ...S }", 2),
        ("fragment C on Customer { code code code } { customers { nodes { ...C code } } }", 3),
        # 200 fragments each selecting `stats` at the root: validation would compare them pairwise.
        (
            "\n".join(f"fragment F{index} on Query {{ stats {{ customerCount }} }}" for index in range(200))
            + "{ " + " ".join(f"...F{index}" for index in range(200)) + " }",
            199,
        ),
    ],
)
def test_fields_selected_again_under_the_same_name_are_counted(document: str, duplicates: int) -> None:
    assert measure(document).duplicates == duplicates


def test_first_comes_from_the_variables_then_the_default_value() -> None:
    document = "query Q($n: Int = 7) { customers(first: $n) { nodes { code } } }"
    assert measure(document).cost == 1 + 7 * 2
    assert measure(document, {"n": 50}).cost == 1 + 50 * 2
    # Not an integer (the operation is refused later): the default page.
    assert measure(document, {"n": "many"}).cost == 1 + DEFAULT_PAGE_SIZE * 2
    # Negative or too large: what the resolver could return at most.
    assert measure(document, {"n": -3}).cost == 1
    assert measure(document, {"n": 10**9}).cost == 1 + MAX_PAGE_SIZE * 2


def test_the_named_operation_is_measured() -> None:
    document = "query Small { stats { customerCount } } query Big { customers(first: 100) { nodes { code } } }"
    assert measure(document, operation_name="Small").cost == 2
    assert measure(document, operation_name="Big").cost == 201
    # Ambiguous (the request is refused later): the worst.
    assert measure(document).cost == 201


def test_introspection_has_no_depth_and_lists_count_once() -> None:
    introspection = measure(get_introspection_query(descriptions=True))
    assert introspection.depth == 0
    assert 0 < introspection.cost < 1_000
    deep = measure("{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }")
    assert deep == Measure(cost=8, depth=0)


def test_fragment_cycles_end() -> None:
    document = "fragment A on Query { ...B stats { customerCount } } fragment B on Query { ...A } { ...A }"
    assert measure(document).cost == 2
    assert measure("fragment A on Query { ...A } { ...A ...Missing }") == Measure()


def test_the_fan_out_attack_is_measured_in_linear_time() -> None:
    document = fan_out(40)
    assert len(document) < 2_100
    started = time.perf_counter()
    measured = measure(document)
    # Written out, the document would hold 2**40 copies of F0; measuring it takes milliseconds.
    assert time.perf_counter() - started < 5
    assert measured.cost == 2 * 2**40
    huge = measure(fan_out(200))
    assert huge.cost == CEILING


# -- measuring with fragments equals measuring the fragments written out ------------------------

CUSTOMER_FIELDS = ["code", "name", "team { key }", "segments { key }", "a{n}: manager { name }"]
QUERY_FIELDS = ["stats { customerCount }", "teams { key }", "q{n}: customers(first: 3) { nodes { ...C{c} } }"]


@st.composite
def fragment_dags(draw: st.DrawFn) -> tuple[dict[str, tuple[str, str]], str]:
    """Fragments C0..Ck on Customer and Q0..Qm on Query, each spreading only lower-numbered ones
    (a DAG), and an operation spreading some of them."""
    fragments: dict[str, tuple[str, str]] = {}
    counter = iter(range(10_000))
    for prefix, type_name, fields in (("C", "Customer", CUSTOMER_FIELDS), ("Q", "Query", QUERY_FIELDS)):
        for index in range(draw(st.integers(1, 4))):
            customer_fragments = _count(fragments, "C")
            parts = [
                draw(st.sampled_from(fields))
                .replace("{n}", str(next(counter)))
                .replace("{c}", str(draw(st.integers(0, customer_fragments - 1))) if customer_fragments else "0")
                for _ in range(draw(st.integers(1, 3)))
            ]
            if index:
                parts += [f"...{prefix}{draw(st.integers(0, index - 1))}" for _ in range(draw(st.integers(0, 2)))]
            fragments[f"{prefix}{index}"] = (type_name, " ".join(parts))
    queries = [name for name in fragments if name.startswith("Q")]
    spreads = draw(st.lists(st.sampled_from(queries), min_size=1, max_size=3))
    operation = "{ " + " ".join(f"...{name}" for name in spreads) + " }"
    # Defined in any order: a spread may come before the fragment it names.
    shuffled = {name: fragments[name] for name in draw(st.permutations(list(fragments)))}
    return shuffled, operation


def _count(fragments: dict[str, tuple[str, str]], prefix: str) -> int:
    return sum(1 for name in fragments if name.startswith(prefix))


def written_out(fragments: dict[str, tuple[str, str]], operation: str) -> str:
    """The operation with every spread replaced by its fragment as an inline fragment, recursively."""
    text = operation
    while "..." in text.replace("... on", ""):
        for name in sorted(fragments, key=len, reverse=True):
            type_name, body = fragments[name]
            text = _replace_spread(text, name, f"... on {type_name} {{ {body} }}")
    return text


def _replace_spread(text: str, name: str, inline: str) -> str:
    out = []
    index = 0
    token = f"...{name}"
    while (found := text.find(token, index)) >= 0:
        end = found + len(token)
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            out.append(text[index:end])
        else:
            out.append(text[index:found] + inline)
        index = end
    out.append(text[index:])
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(fragment_dags())
def test_fragments_measure_as_if_written_out(dag: tuple[dict[str, tuple[str, str]], str]) -> None:
    fragments, operation = dag
    with_fragments = "\n".join(f"fragment {name} on {type_name} {{ {body} }}" for name, (type_name, body) in fragments.items())
    assert measure(f"{with_fragments}\n{operation}") == measure(written_out(fragments, operation))
