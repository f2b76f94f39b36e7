"""Direct resolvers (schema/direct_resolvers.py) answer exactly as Strawberry's own wrappers.

Three kinds of proof: every field the module rewrote is one Strawberry's wrapper only forwards
(checked here from Strawberry's own field definitions, not through the module's rule), and every
field it left has something the wrapper does; on a small schema of every kind of field, exactly
the forwarding ones are rewritten; and the app answers the same documents byte for byte with the
direct resolvers and with Strawberry's (put back for the comparison): every field reachable
without arguments, the bench's page, generated queries (hypothesis-graphql), and errors raised in
rewritten resolvers of each kind.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import graphql
import httpx
import pytest
import strawberry
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_graphql import strategies as gql_st
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from segmenta.domain.access.tokens import create_token
from segmenta.schema import DIRECT_RESOLVERS, schema, types
from segmenta.schema.cost import measure_operation
from segmenta.schema.direct_resolvers import ATTRIBUTE, METHOD, METHOD_WITH_INFO, Rewrite, use_direct_resolvers
from segmenta.schema.limits import MAX_QUERY_COST
from segmenta.server import create_app
from segmenta.storage.engine import session_factory
from tests.schema.helpers import build_world
from tests.schema.test_fuzz_graphql import CUSTOM_SCALARS, SCHEMA_SDL

# What Strawberry's GraphQLCoreConverter.from_resolver returns, spelled out independently of the module.
WRAPPERS = {
    "GraphQLCoreConverter.from_resolver.<locals>._get_basic_result",
    "GraphQLCoreConverter.from_resolver.<locals>._resolver",
    "GraphQLCoreConverter.from_resolver.<locals>._async_resolver",
}
PARAMETERS = {METHOD: ["self"], METHOD_WITH_INFO: ["self", "info"]}


@contextmanager
def strawberry_resolvers(rewrites: tuple[Rewrite, ...] = DIRECT_RESOLVERS) -> Iterator[None]:
    """Strawberry's own wrappers back in place, for as long as the block runs."""
    for rewrite in rewrites:
        rewrite.field.resolve = rewrite.strawberry_resolve
    try:
        yield
    finally:
        for rewrite in rewrites:
            rewrite.field.resolve = rewrite.direct_resolve


def strawberry_field(graphql_field: graphql.GraphQLField) -> StrawberryField:
    field = graphql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
    assert isinstance(field, StrawberryField)
    return field


def parameter_names(field: StrawberryField) -> list[str]:
    assert field.base_resolver is not None
    return list(field.base_resolver.signature.parameters)


def object_fields() -> Iterator[tuple[graphql.GraphQLObjectType, str, graphql.GraphQLField]]:
    for graphql_type in schema._schema.type_map.values():
        if isinstance(graphql_type, graphql.GraphQLObjectType) and not graphql_type.name.startswith("__"):
            for name, graphql_field in graphql_type.fields.items():
                yield graphql_type, name, graphql_field


# ---------------------------------------------------------------------------------------------
# The rule, checked on the served schema.


def test_every_rewritten_field_is_one_strawberrys_wrapper_only_forwards() -> None:
    assert not schema.exception_handlers  # none in this schema: no field's errors become results
    subscription = schema._schema.subscription_type
    for rewrite in DIRECT_RESOLVERS:
        where = f"{rewrite.type_name}.{rewrite.field_name}"
        graphql_type = schema._schema.get_type(rewrite.type_name)
        assert isinstance(graphql_type, graphql.GraphQLObjectType) and graphql_type is not subscription, where
        assert graphql_type.fields[rewrite.field_name] is rewrite.field, where
        assert rewrite.field.resolve is rewrite.direct_resolve, where
        assert rewrite.strawberry_resolve.__qualname__ in WRAPPERS, where
        field = strawberry_field(rewrite.field)
        assert not field.extensions and not field.arguments and not rewrite.field.args, where
        assert not field.is_subscription and rewrite.field.subscribe is None, where
        if rewrite.kind == ATTRIBUTE:
            assert field.base_resolver is None, where
        else:
            assert parameter_names(field) == PARAMETERS[rewrite.kind], where
            assert field.is_async == asyncio.iscoroutinefunction(field.base_resolver.wrapped_func), where  # type: ignore[union-attr]


def test_every_field_left_to_strawberry_has_something_the_wrapper_does() -> None:
    rewritten = {id(rewrite.field) for rewrite in DIRECT_RESOLVERS}
    for graphql_type, name, graphql_field in object_fields():
        if id(graphql_field) in rewritten:
            continue
        field = strawberry_field(graphql_field)
        assert (
            graphql_field.args
            or field.extensions
            or graphql_field.subscribe is not None
            or (field.base_resolver is not None and parameter_names(field) not in PARAMETERS.values())
        ), f"{graphql_type.name}.{name} could be resolved directly"


def test_what_is_rewritten_on_the_served_schema() -> None:
    kinds = Counter(rewrite.kind for rewrite in DIRECT_RESOLVERS)
    assert kinds[ATTRIBUTE] > 300 and kinds[METHOD] > 0 and kinds[METHOD_WITH_INFO] > 0, kinds
    by_name = {(rewrite.type_name, rewrite.field_name): rewrite for rewrite in DIRECT_RESOLVERS}
    assert by_name["Customer", "team"].kind == METHOD_WITH_INFO and not by_name["Customer", "team"].is_async
    assert by_name["Team", "members"].kind == METHOD_WITH_INFO and by_name["Team", "members"].is_async
    assert by_name["CustomerConnection", "nodes"].kind == METHOD
    assert ("Query", "customers") not in by_name and ("Customer", "purchases") not in by_name  # arguments
    assert ("Query", "apiTokens") not in by_name  # a permission class
    # Every Node's `id` is a plain attribute here; the interface's own fields are never resolved.
    node = schema._schema.get_type("Node")
    assert isinstance(node, graphql.GraphQLInterfaceType)
    assert node.fields["id"].resolve.__qualname__ in WRAPPERS  # type: ignore[union-attr]
    for implementation in schema._schema.get_implementations(node).objects:
        assert by_name[implementation.name, "id"].kind == ATTRIBUTE
    subscription = schema._schema.subscription_type
    assert subscription is not None and not any(rewrite.type_name == subscription.name for rewrite in DIRECT_RESOLVERS)


# ---------------------------------------------------------------------------------------------
# The rule, checked on a schema with every kind of field.


class Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class Oops(Exception):
    pass


@strawberry.type
class OopsError:
    message: str


@strawberry.type
class Thing:
    name: str
    hidden: str | None = strawberry.field(default="secret", permission_classes=[Deny])

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def path(self, info: strawberry.Info) -> str:
        return f"{info.path.key}:{info.field_name}:{info.python_name}"

    @strawberry.field
    async def later(self, info: strawberry.Info) -> str:
        await asyncio.sleep(0)
        return f"{self.name} later at {info.path.key}"

    @strawberry.field
    def repeat(self, times: int = 2) -> str:
        return self.name * times

    @strawberry.field
    def rooted(self, root: Any) -> str:
        return f"root {root.name}"

    @strawberry.field
    @staticmethod
    def fixed() -> str:
        return "fixed"

    @strawberry.field
    def fails(self) -> str | None:
        raise ValueError("no")

    @strawberry.field
    def maybe(self) -> Thing | OopsError:
        raise Oops


class OopsHandler(strawberry.ExceptionHandler[Oops, OopsError]):
    def handle(self, exception: Oops, *, field: StrawberryField, info: strawberry.Info) -> OopsError:
        return OopsError(message="handled")


@strawberry.type
class SmallQuery:
    @strawberry.field
    def thing(self) -> Thing:
        return Thing(name="ab")


@strawberry.type
class SmallSubscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncIterator[int]:
        yield 1


def attribute_in_capitals(source: Any, name: str) -> Any:
    return str(getattr(source, name)).upper() if name == "name" else getattr(source, name)


def small_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=SmallQuery,
        subscription=SmallSubscription,
        config=StrawberryConfig(default_resolver=attribute_in_capitals),
        exception_handlers=[OopsHandler()],
    )


SMALL_DOCUMENT = """{ thing { name shout path later repeat rooted fixed fails hidden
  maybe { __typename ... on OopsError { message } } } }"""


async def test_only_fields_the_wrapper_only_forwards_are_rewritten() -> None:
    plain, direct = small_schema(), small_schema()
    rewrites = use_direct_resolvers(direct)
    assert {(rewrite.type_name, rewrite.field_name, rewrite.kind) for rewrite in rewrites} == {
        ("SmallQuery", "thing", METHOD),
        ("Thing", "name", ATTRIBUTE),
        ("Thing", "shout", METHOD),
        ("Thing", "path", METHOD_WITH_INFO),
        ("Thing", "later", METHOD_WITH_INFO),
        ("Thing", "fails", METHOD),
        ("OopsError", "message", ATTRIBUTE),
    }
    expected = await plain.execute(SMALL_DOCUMENT)
    answered = await direct.execute(SMALL_DOCUMENT)
    assert expected.data == answered.data
    assert expected.data["thing"]["name"] == "AB"  # type: ignore[index]  # the configured default resolver
    assert expected.data["thing"]["path"] == "path:path:path"  # type: ignore[index]
    assert [error.formatted for error in expected.errors or []] == [error.formatted for error in answered.errors or []]
    assert {tuple(error.path or ()) for error in answered.errors or []} == {("thing", "fails"), ("thing", "hidden")}
    with strawberry_resolvers(rewrites):
        again = await direct.execute(SMALL_DOCUMENT)
    assert again.data == expected.data
    ticks = await direct.subscribe("subscription { ticks }")
    assert [result.data async for result in ticks] == [{"ticks": 1}]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# The app's answers, both ways.


def _selection(graphql_type: graphql.GraphQLNamedType, depth: int) -> str:
    """Every field of `graphql_type` that needs no argument, `depth` levels down; fragments for abstract types."""
    if isinstance(graphql_type, graphql.GraphQLUnionType | graphql.GraphQLInterfaceType):
        objects = schema._schema.get_possible_types(graphql_type)
        return "{ __typename " + " ".join(f"... on {item.name} {_selection(item, depth)}" for item in objects) + " }"
    assert isinstance(graphql_type, graphql.GraphQLObjectType)
    parts = []
    for name, field in graphql_type.fields.items():
        if any(graphql.is_required_argument(argument) for argument in field.args.values()):
            continue
        named = graphql.get_named_type(field.type)
        if graphql.is_leaf_type(named):
            parts.append(name)
        elif depth > 0:
            # Two items a list: the query cost multiplies by each list's size.
            arguments = "(first: 2)" if "first" in field.args else ""
            parts.append(f"{name}{arguments} {_selection(named, depth - 1)}")
    return "{ " + " ".join(parts or ["__typename"]) + " }"


def everything_documents(deepest: int = 3) -> list[str]:
    """One document per root query field that needs no argument: as deep as the query cost limit allows."""
    query = schema._schema.query_type
    assert query is not None
    documents = []
    for name, field in query.fields.items():
        if any(graphql.is_required_argument(argument) for argument in field.args.values()):
            continue
        named = graphql.get_named_type(field.type)
        call = name + ("(first: 2)" if "first" in field.args else "")
        if graphql.is_leaf_type(named):
            documents.append(f"{{ {call} }}")
            continue
        for depth in range(deepest, -1, -1):
            document = f"{{ {call} {_selection(named, depth)} }}"
            if measure_operation(schema._schema, graphql.parse(document)).cost <= MAX_QUERY_COST:
                break
        documents.append(document)
    return documents


PAGE = """query CustomerPage { customers(first: 100) { nodes {
  id name team { key name } manager { name } segments { key } tags
  metrics { totalSpent purchaseCount avgSatisfaction daysSincePurchase } }
  pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
async def clients(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with session_factory(engine)() as session:
        await build_world(session)
        tokens = {
            role: await create_token(session, role, employee_email="ann@example.com" if role == "agent" else None, label=role)
            for role in ("admin", "agent")
        }
        await session.commit()
    transport = httpx.ASGITransport(app=create_app(engine=engine, schedule=False, run_wait=30))
    async with httpx.AsyncClient(transport=transport, base_url="http://segmenta.test") as client:
        for token in tokens.values():  # each token's first use is recorded: done before any comparison
            await client.post("/graphql", json={"query": "{ me { role } }"}, headers={"Authorization": f"Bearer {token}"})
        yield client, tokens


async def both_ways(client: httpx.AsyncClient, token: str, document: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer with the direct resolvers, after checking Strawberry's wrappers give the same."""
    payload = {"query": document, "variables": variables or {}}
    headers = {"Authorization": f"Bearer {token}"}
    direct = await client.post("/graphql", json=payload, headers=headers)
    with strawberry_resolvers():
        wrapped = await client.post("/graphql", json=payload, headers=headers)
    assert (direct.status_code, direct.content) == (wrapped.status_code, wrapped.content), document
    return direct.json()


def fields_in(document: str) -> set[tuple[str, str]]:
    """The (type, field) pairs a document selects."""
    found: set[tuple[str, str]] = set()
    type_info = graphql.TypeInfo(schema._schema)

    class Collect(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                found.add((parent.name, node.name.value))

    graphql.visit(graphql.parse(document), graphql.TypeInfoVisitor(type_info, Collect()))
    return found


async def test_every_field_reachable_without_arguments_answers_the_same(
    clients: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = clients
    documents = [*everything_documents(), PAGE]
    for role in ("admin", "agent"):
        for document in documents:
            body = await both_ways(client, tokens[role], document)
            # An agent is refused some root fields (compared all the same); the admin reads everything.
            assert role == "agent" or (body.get("data") and "errors" not in body), (document, body)
    # One existing row of each type (ids are not 1 on PostgreSQL, whose sequences outlive a test's rows).
    first_ids = await both_ways(
        client, tokens["admin"], "{ customers(first: 1) { nodes { id } } teams { id } employees { id } segments { id } }"
    )
    existing = first_ids["data"]
    wanted_ids = {
        "Customer": existing["customers"]["nodes"][0]["id"],
        "Team": existing["teams"][0]["id"],
        "Employee": existing["employees"][0]["id"],
        "Segment": existing["segments"][0]["id"],
    }
    for type_name, wanted in wanted_ids.items():
        selection = _selection(schema._schema.get_type(type_name), 1)  # type: ignore[arg-type]
        node = f"query ($id: ID!) {{ node(id: $id) {{ __typename ... on {type_name} {selection} }} }}"
        body = await both_ways(client, tokens["admin"], node, {"id": wanted})
        assert body["data"]["node"]["id"] == wanted, body
    selected = set().union(*(fields_in(document) for document in documents))
    covered = [rewrite for rewrite in DIRECT_RESOLVERS if (rewrite.type_name, rewrite.field_name) in selected]
    # The rest hang off fields with required arguments or mutations only (payloads): the generated queries reach some.
    assert len(covered) > 250 and {rewrite.kind for rewrite in covered} == {ATTRIBUTE, METHOD, METHOD_WITH_INFO}


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ("{ customers(first: 3) { nodes { code name } } }", ["customers", "nodes", 0, "name"]),  # attribute
        ("{ customers(first: 3) { nodes { code tags } } }", ["customers", "nodes", 0, "tags"]),  # method, sync
        ("{ teams { key members { role } } }", ["teams", 0, "members"]),  # method, async
    ],
)
async def test_an_error_in_a_rewritten_resolver_comes_back_located_with_its_code(
    clients: tuple[httpx.AsyncClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch, document: str, path: list[Any]
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("broken on purpose")

    monkeypatch.setitem(types._CUSTOMER_FIELDS, "name", broken)
    monkeypatch.setattr(types, "_all_tags", broken)
    monkeypatch.setattr(types.TeamMember, "from_row", broken)
    client, tokens = clients
    body = await both_ways(client, tokens["admin"], document)
    error = body["errors"][0]
    assert error["path"] == path and error["locations"], error
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR" and "broken" not in error["message"]


GENERATED = settings(
    deadline=None,
    max_examples=40,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@GENERATED
@given(document=gql_st.queries(SCHEMA_SDL, custom_scalars=CUSTOM_SCALARS))
async def test_generated_queries_answer_the_same(clients: tuple[httpx.AsyncClient, dict[str, str]], document: str) -> None:
    client, tokens = clients
    await both_ways(client, tokens["admin"], document)
