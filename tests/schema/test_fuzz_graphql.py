"""Fuzzing the GraphQL endpoint: whatever a token holder sends, the answer is a clear error, never a crash.

Documents come from hypothesis-graphql over the printed schema: valid queries and mutations with
arbitrary arguments (POSITIVE), documents with one schema violation (NEGATIVE), and variables of
arbitrary JSON for every root field.  They run as admin, manager, agent and viewer against the app
over a small known world.  Every answer must hold the invariants of `assert_well_formed`: no HTTP
500, no exception escaping the app, and every GraphQL error carrying `extensions.code` that is not
INTERNAL_SERVER_ERROR (a masked bug).

The database is not emptied between examples (that would cost more than the examples), so a
generated mutation's writes stay for the next ones: later examples meet the state earlier ones
left, which is part of what is being fuzzed.

Raw request bodies (random bytes, random JSON, wrong content types) go to the real served process
(tests/live_server.py): the answer must be a 4xx with a JSON error carrying a code.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import AsyncIterator, Iterator
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from hypothesis_graphql import strategies as gql_st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.scope import scope_of
from segmenta.domain.access.tokens import create_token
from segmenta.schema import schema
from segmenta.schema.ids import encode_id
from segmenta.server import create_app
from segmenta.storage import models
from segmenta.storage.engine import session_factory
from tests.live_server import LiveServer
from tests.schema.helpers import build_world

SCHEMA_SDL = str(schema)
PARSED_SCHEMA = graphql.build_schema(SCHEMA_SDL)
ROLES = ("admin", "manager", "agent", "viewer")
INTERNAL = "INTERNAL_SERVER_ERROR"
# A rule file that routes the world's customers, so applyRuleset/previewRuleset have a real ruleset to work on.
RULES = "big: size >= large -> team east_sales, tag big\notherwise -> team west_sales\n"

# The examples are many small requests; the budget keeps the whole module to seconds per back end.
# No shrinking: the database keeps what earlier examples wrote, so a smaller replay rarely means
# the same thing, and shrinking a failure cost minutes; the failing payload is shown as it was.
FUZZ = settings(
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# Values for the schema's scalars: mostly well-formed (to reach the resolvers) with some junk.

ID_TYPES = sorted(
    name
    for name, named in PARSED_SCHEMA.type_map.items()
    if isinstance(named, graphql.GraphQLObjectType) and "id" in named.fields and not name.startswith("__")
)
junk_text = st.text(max_size=40)
global_ids = st.builds(encode_id, st.sampled_from(ID_TYPES), st.integers(min_value=-1, max_value=12))
ids = st.one_of(global_ids, global_ids, junk_text).map(nodes.String)
dates = st.one_of(st.dates().map(lambda day: day.isoformat()), junk_text).map(nodes.String)
datetimes = st.one_of(
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    junk_text,
).map(nodes.String)
graphql_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def _json_object(pairs: dict[str, graphql.ValueNode]) -> graphql.ValueNode:
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value) for key, value in pairs.items()])


json_values: st.SearchStrategy[graphql.ValueNode] = st.recursive(
    st.one_of(
        junk_text.map(nodes.String),
        st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(nodes.List),
        st.dictionaries(graphql_names, children, max_size=4).map(_json_object),
    ),
    max_leaves=12,
)
# Money: decimal strings (some with too many places, negative or huge), JSON numbers, junk.
money = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(
        lambda amount: nodes.String(str(amount))
    ),
    st.decimals(allow_nan=True, allow_infinity=True).map(lambda amount: nodes.String(str(amount))),
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    junk_text.map(nodes.String),
)
CUSTOM_SCALARS = {"ID": ids, "Date": dates, "DateTime": datetimes, "JSON": json_values, "Money": money}


def documents(mode: gql_st.Mode) -> st.SearchStrategy[str]:
    return gql_st.from_schema(SCHEMA_SDL, custom_scalars=CUSTOM_SCALARS, mode=mode)


# ---------------------------------------------------------------------------------------------
# The app over a small world, with one token per role (the agent bound to Ann, who has customers).


@pytest.fixture
async def fuzz_client(engine: AsyncEngine) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    async with session_factory(engine)() as session:
        await build_world(session)
        tokens = {
            role: await create_token(
                session, role, employee_email="ann@example.com" if role == "agent" else None, label=f"fuzz {role}"
            )
            for role in ROLES
        }
        await session.commit()
    # An exception escaping the app is raised here rather than turned into a 500, so a failing
    # example shows its traceback next to the document that caused it.
    transport = httpx.ASGITransport(app=create_app(engine=engine, schedule=False, run_wait=30))
    async with httpx.AsyncClient(transport=transport, base_url="http://segmenta.test") as client:
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        saved = await client.post(
            "/graphql",
            json={"query": "mutation($s: String!) { saveRuleset(name: \"fuzz\", source: $s) { ruleset { id } } }",
                  "variables": {"s": RULES}},
            headers=admin,
        )
        ruleset_id = saved.json()["data"]["saveRuleset"]["ruleset"]["id"]
        await client.post(
            "/graphql", json={"query": f'mutation {{ activateRuleset(id: "{ruleset_id}") {{ ruleset {{ id }} }} }}'}, headers=admin
        )
        yield client, tokens


class ServerLog(logging.Handler):
    """What the app logged as unexpected, so a failing example shows the server-side traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def last(self) -> str:
        return logging.Formatter().format(self.records[-1]) if self.records else "(nothing logged)"


SERVER_LOG = ServerLog()


@pytest.fixture(autouse=True)
def server_log() -> Iterator[ServerLog]:
    logger = logging.getLogger("segmenta")
    logger.addHandler(SERVER_LOG)
    try:
        yield SERVER_LOG
    finally:
        logger.removeHandler(SERVER_LOG)
        SERVER_LOG.records.clear()


def graphql_errors(body: Any) -> Iterator[dict[str, Any]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    yield from errors or []


def assert_well_formed(response: httpx.Response, sent: str) -> None:
    """The invariants every answer keeps, whatever was sent."""
    assert response.status_code < 500, f"HTTP {response.status_code} for:\n{sent}\n{response.text[:2000]}"
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), f"not a GraphQL answer for:\n{sent}\n{body}"
    for error in graphql_errors(body):
        code = (error.get("extensions") or {}).get("code")
        assert code, f"error without extensions.code for:\n{sent}\n{error}"
        assert code != INTERNAL, f"internal error for:\n{sent}\n{error}\nserver log:\n{SERVER_LOG.last()}"


async def post_plain(client: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> httpx.Response:
    return await client.post("/graphql", json=payload, headers={"Authorization": f"Bearer {token}"})


async def post(client: httpx.AsyncClient, token: str, payload: dict[str, Any]) -> httpx.Response:
    """Posts a generated example; the payload is shown with a failing example."""
    note(json.dumps(payload, ensure_ascii=False, indent=1))
    return await post_plain(client, token, payload)


# A bad cursor inside a list of customers, next to a field every customer loads.
LIST_ITEM_ERROR = '{ customers { nodes { feedback(after: "not a cursor") { totalCount } tags } } }'
roles = st.sampled_from(("admin", "admin", "admin", "manager", "agent", "viewer"))


# Found by fuzzing, kept as explicit examples so they run every time: the first two are an error
# inside a list (the bad cursor) followed by any request; the third asks for two root fields whose
# resolvers used the request's one database session at the same moment; the last two filter by a
# text with a NUL character, which PostgreSQL refuses to compare.
@settings(FUZZ, max_examples=120)
@given(document=documents(gql_st.Mode.POSITIVE), role=roles)
@example(document=LIST_ITEM_ERROR, role="admin")
@example(document="{ customers { totalCount } }", role="admin")
@example(document="{ segments { size } apiTokens { active } }", role="admin")
@example(document='{ rulesets(name: "\\u0000") { id } customerByCode(code: "a\\u0000") { id } }', role="viewer")
@example(document='{ customers(where: "name = \\"\\u0000\\"") { totalCount } }', role="viewer")
async def test_valid_documents_with_arbitrary_arguments_never_fail_internally(
    fuzz_client: tuple[httpx.AsyncClient, dict[str, str]], document: str, role: str
) -> None:
    client, tokens = fuzz_client
    assert_well_formed(await post(client, tokens[role], {"query": document}), document)


@settings(FUZZ, max_examples=40)
@given(document=documents(gql_st.Mode.NEGATIVE), role=roles)
async def test_documents_that_break_the_schema_get_a_coded_error(
    fuzz_client: tuple[httpx.AsyncClient, dict[str, str]], document: str, role: str
) -> None:
    client, tokens = fuzz_client
    response = await post(client, tokens[role], {"query": document})
    assert_well_formed(response, document)
    assert list(graphql_errors(response.json())), f"a document that breaks the schema was accepted:\n{document}"


# ---------------------------------------------------------------------------------------------
# Variables: every root field called with each argument as a variable of its declared type, and
# the variables arbitrary JSON (wrong types, nesting, nulls, huge numbers) or well-typed values.


def _operation(kind: str, name: str, field: graphql.GraphQLField) -> str:
    declared = ", ".join(f"${arg}: {argument.type}" for arg, argument in field.args.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    head = f"{kind}({declared})" if declared else kind
    call = f"{name}({passed})" if passed else name
    leaf = isinstance(graphql.get_named_type(field.type), graphql.GraphQLScalarType | graphql.GraphQLEnumType)
    return f"{head} {{ {call} }}" if leaf else f"{head} {{ {call} {{ __typename }} }}"


ROOT_OPERATIONS = sorted(
    _operation(kind, name, field)
    for kind, root in (("query", PARSED_SCHEMA.query_type), ("mutation", PARSED_SCHEMA.mutation_type))
    if root is not None
    for name, field in root.fields.items()
    if field.args
)
json_documents = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        global_ids,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(string.ascii_letters, max_size=12), children, max_size=5)
    ),
    max_leaves=15,
)


@st.composite
def operations_with_variables(draw: st.DrawFn) -> dict[str, Any]:
    document = draw(st.sampled_from(ROOT_OPERATIONS))
    names = [definition.variable.name.value for definition in graphql.parse(document).definitions[0].variable_definitions]
    variables = {name: draw(json_documents) for name in names if draw(st.integers(0, 9)) > 0}
    return {"query": document, "variables": variables}


@settings(FUZZ, max_examples=100)
@given(payload=operations_with_variables(), role=roles)
async def test_arbitrary_variables_never_fail_internally(
    fuzz_client: tuple[httpx.AsyncClient, dict[str, str]], payload: dict[str, Any], role: str
) -> None:
    client, tokens = fuzz_client
    assert_well_formed(await post(client, tokens[role], payload), json.dumps(payload))


# ---------------------------------------------------------------------------------------------
# An agent's scope under generated queries: whatever path a query takes to a customer (lists,
# lookups, teams, segments, runs, feedback, explain …), every Customer in the answer is one of the
# agent's.  Each generated query is given `__typename` and `id` in every selection set, so the
# customers in the answer can be recognised.


class AddIdentity(graphql.Visitor):
    def __init__(self, type_info: graphql.TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info

    def enter_selection_set(self, node: graphql.SelectionSetNode, *_: Any) -> graphql.SelectionSetNode | None:
        parent = self.type_info.get_parent_type()
        present = {item.name.value for item in node.selections if isinstance(item, graphql.FieldNode) and item.alias is None}
        wanted = ["__typename"] + (["id"] if isinstance(parent, graphql.GraphQLObjectType) and "id" in parent.fields else [])
        extra = [graphql.FieldNode(name=graphql.NameNode(value=name)) for name in wanted if name not in present]
        return graphql.SelectionSetNode(selections=(*node.selections, *extra)) if extra else None


def with_identity(document: str) -> str:
    type_info = graphql.TypeInfo(PARSED_SCHEMA)
    return graphql.print_ast(graphql.visit(graphql.parse(document), graphql.TypeInfoVisitor(type_info, AddIdentity(type_info))))


def customer_ids_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get("__typename") == "Customer" and "id" in value:
            yield value["id"]
        for item in value.values():
            yield from customer_ids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from customer_ids_in(item)


@pytest.fixture
async def agent_customers(fuzz_client: tuple[httpx.AsyncClient, dict[str, str]], engine: AsyncEngine) -> set[str]:
    """The IDs of the customers the agent token (Ann) may see, by domain.access.scope's rule."""
    async with session_factory(engine)() as session:
        ann = await session.scalar(select(models.Employee.id).where(models.Employee.email == "ann@example.com"))
        visible = scope_of("agent", ann).customer_ids()
        assert visible is not None
        keys = set((await session.scalars(visible)).all())
        everyone = set((await session.scalars(select(models.Customer.id))).all())
    assert keys and keys != everyone, "the world must give the agent some customers and not others"
    return {encode_id("Customer", key) for key in keys}


@settings(FUZZ, max_examples=60)
@given(document=gql_st.queries(SCHEMA_SDL, custom_scalars=CUSTOM_SCALARS).map(with_identity))
async def test_an_agent_never_receives_a_customer_outside_their_scope(
    fuzz_client: tuple[httpx.AsyncClient, dict[str, str]], agent_customers: set[str], document: str
) -> None:
    client, tokens = fuzz_client
    response = await post(client, tokens["agent"], {"query": document})
    assert_well_formed(response, document)
    leaked = set(customer_ids_in(response.json().get("data"))) - agent_customers
    assert not leaked, f"the agent received customers outside their scope: {sorted(leaked)}"


# ---------------------------------------------------------------------------------------------
# Found by the fuzzing above: a bad argument deep inside a list (LIST_ITEM_ERROR) made the sibling
# resolvers' statements stop half-way, and the request's connection went back to the pool closed,
# so the NEXT request on it failed with an internal error (HTTP 500 over real HTTP).


async def test_an_error_inside_a_list_leaves_the_connection_usable_for_the_next_requests(
    fuzz_client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = fuzz_client
    for role in ("admin", "agent", "admin"):
        refused = await post_plain(client, tokens[role], {"query": LIST_ITEM_ERROR})
        assert_well_formed(refused, LIST_ITEM_ERROR)
        assert [error["extensions"]["code"] for error in refused.json()["errors"]] == ["BAD_USER_INPUT"] * len(
            refused.json()["errors"]
        )
        following = await post_plain(client, tokens[role], {"query": "{ customers { totalCount } }"})
        assert_well_formed(following, "{ customers { totalCount } }")
        assert following.json()["data"]["customers"]["totalCount"] > 0


# The same inside a mutation document: the first mutation's payload fails deep in a list while
# sibling fields still read, and the next mutation began its transaction on the session those reads
# were using ("This session is provisioning a new connection"), an intermittent internal error.
MUTATION_AFTER_LIST_ERROR = """mutation {
  a: createCustomer(input: {code: "FUZZ-L1", name: "x"}) {
    customer { id manager { createdAt } segments { size }
      purchases(first: 8, after: "not a cursor") { nodes { customer { city feedback(first: 4, after: "") { totalCount } } } } }
  }
  b: submitFeedback(input: {customerId: "QXBpVG9rZW46MA==", kind: SURVEY, channel: ""}) { feedback { resolvedAt } }
}"""


async def test_a_mutation_after_an_error_inside_a_list_waits_for_the_reads_before_it(
    fuzz_client: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = fuzz_client
    for attempt in range(6):
        document = MUTATION_AFTER_LIST_ERROR.replace("FUZZ-L1", f"FUZZ-L{attempt}")
        answer = await post_plain(client, tokens["admin"], {"query": document})
        assert_well_formed(answer, document)


# ---------------------------------------------------------------------------------------------
# Raw request bodies against the real served process: whatever arrives, the answer is a 4xx whose
# JSON body carries an error code, never a 500 or a bare text page.


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer.start(tmp_path_factory.mktemp("fuzz-live"), customers=20)
    yield server
    server.stop()


def _is_graphql_request(body: bytes) -> bool:
    """A JSON object whose `query` is text: a GraphQL request (answered with GraphQL errors, maybe 200)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("query"), str)


raw_bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(lambda text: text.encode("utf-8")),
    json_documents.map(lambda value: json.dumps(value).encode("utf-8")),
    st.fixed_dictionaries(
        {},
        optional={"query": json_documents, "variables": json_documents, "operationName": json_documents},
    ).map(lambda value: json.dumps(value).encode("utf-8")),
).filter(lambda body: not _is_graphql_request(body))
content_types = st.sampled_from(
    ["application/json", "application/json; charset=latin-1", "text/plain", "application/graphql",
     "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x", ""]
)


@settings(FUZZ, max_examples=80)
@given(body=raw_bodies, content_type=content_types, authenticated=st.booleans())
def test_raw_bodies_get_a_coded_4xx_from_the_served_process(
    live: LiveServer, body: bytes, content_type: str, authenticated: bool
) -> None:
    note(f"body={body!r} content-type={content_type!r}")
    status, answer = live.post(
        body, token=live.tokens["admin"] if authenticated else None, headers={"Content-Type": content_type}
    )
    assert 400 <= status < 500, f"HTTP {status}: {answer!r}"
    assert isinstance(answer, dict), f"HTTP {status} without a JSON body: {answer!r}"
    codes = [(error.get("extensions") or {}).get("code") for error in answer.get("errors") or []]
    assert codes and all(codes), f"HTTP {status} without coded errors: {answer!r}"
    assert INTERNAL not in codes, answer
