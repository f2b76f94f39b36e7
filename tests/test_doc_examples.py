"""Every GraphQL example in the README and docs/ runs, in the order written, against the demo data
served by the real `segmenta serve`, so a doc cannot drift from the code.

An example is a ```graphql block. Each operation in it runs on its own (fragments shared), as the
admin, and must answer without `errors` and with every `userErrors` list empty. Values an example
cannot know are filled in by name: a variable `$customer` (or a string "CUSTOMER_ID") gets a
customer of the demo data, `$employee`/"EMPLOYEE_ID" an employee, `$ruleset`/"RULESET_ID" the
ruleset the example saved last (else the active one), `$run`/"RUN_ID" the run it started last
(else the demo's newest),
"CREATED_CUSTOMER_ID", "FEEDBACK_ID" and "TOKEN_ID" what an earlier example's createCustomer,
submitFeedback and createApiToken made, "TASK_ID" what the latest createTask made.
A root field answering null (a key or code the demo data does not have) fails the example too.
A block preceded by `<!-- example as ROLE -->` runs with a token of that role (viewer, or agent:
bound to an employee), and one preceded by `<!-- example expects CODE -->` (or both, `<!-- example
as agent expects FORBIDDEN -->`) must fail with that error code instead.
Subscriptions are checked against the schema, not run (they wait for events). Every query and
mutation of the schema appears in some example. The examples run on SQLite, and on PostgreSQL too
when SEGMENTA_TEST_POSTGRES_URL is set (in a database of their own, dropped afterwards).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, OperationType, parse, print_ast, validate
from graphql.language import DocumentNode, FragmentDefinitionNode

from segmenta.schema import schema
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.live_server import SEGMENTA, LiveServer, new_postgres_database, segmenta

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:<!-- example(?: as (?P<role>admin|viewer|agent))?(?: expects (?P<code>[A-Z_]+))? -->\n)?"
    r"```graphql\n(?P<text>.*?)\n```",
    re.S,
)
TOKEN = re.compile(r"/graphql\?token=(sgm_[A-Za-z0-9_-]+)")
PLACEHOLDERS = {
    "CUSTOMER_ID": "customer",
    "EMPLOYEE_ID": "employee",
    "RULESET_ID": "ruleset",
    "RUN_ID": "run",
    "CREATED_CUSTOMER_ID": "created_customer",
    "FEEDBACK_ID": "feedback",
    "TOKEN_ID": "token",
    "TASK_ID": "task",
}
# What an example's mutation made, under the name a later example's placeholder uses: the root
# field, then the payload field holding the object whose id is kept.
MADE = {
    "createCustomer": ("customer", "created_customer"),
    "submitFeedback": ("feedback", "feedback"),
    "createApiToken": ("apiToken", "token"),
    "createTask": ("task", "task"),
    "saveRuleset": ("ruleset", "ruleset"),
    "previewRuleset": ("run", "run"),
    "applyRuleset": ("run", "run"),
}


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    text: str
    role: str
    expected_code: str | None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        content = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(content):
            line = content.count("\n", 0, match.start("text"))
            found.append(Example(path, line, match.group("text"), match.group("role") or "admin", match.group("code")))
    return found


EXAMPLES = _examples()


class Demo:
    """The served demo data and what the examples have created so far."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        found = self.data(
            "{ customers(first: 1, orderBy: CODE_ASC) { edges { node { id } } }"
            " employees(active: true) { id } activeRuleset { id } evaluationRuns(first: 1) { edges { node { id } } } }"
        )
        self.values: dict[str, str] = {
            "customer": found["customers"]["edges"][0]["node"]["id"],
            "employee": found["employees"][0]["id"],
            "ruleset": found["activeRuleset"]["id"],
            "run": found["evaluationRuns"]["edges"][0]["node"]["id"],
        }

    def data(self, query: str) -> Any:
        status, body = self.server.query(query)
        assert status == 200 and "errors" not in body, body
        return body["data"]

    def remember(self, operation: OperationDefinitionNode, data: Any) -> None:
        """The ids an operation made that a later example may name (when it selected them)."""
        for response_key, answer in (data or {}).items():
            made = MADE.get(_root_field(operation, response_key))
            if made is None or not isinstance(answer, dict):
                continue
            thing = answer.get(made[0])
            if isinstance(thing, dict) and "id" in thing:
                self.values[made[1]] = thing["id"]


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new, empty database on the back end under test (a database of its own on PostgreSQL)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('doc-examples') / 'demo.db'}"
        return
    assert POSTGRES_URL is not None
    with new_postgres_database(POSTGRES_URL, "segmenta_docs") as url:
        yield url


@pytest.fixture(scope="module")
def demo(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("doc-examples-server")
    url = database_url
    prepared = subprocess.run(
        [SEGMENTA, "demo", "--no-serve", "--customers", "300", "--database-url", url],
        capture_output=True, text=True, check=True, timeout=300,
    )
    token = TOKEN.search(prepared.stdout)
    assert token is not None, prepared.stdout
    server = LiveServer.serve(url, folder, tokens={"admin": token.group(1)})
    try:
        demo = Demo(server)
        email = demo.data("{ employees(active: true) { email } }")["employees"][0]["email"]
        server.tokens["viewer"] = segmenta("token", "create", "--role", "viewer", "--database-url", url).strip()
        server.tokens["agent"] = segmenta(
            "token", "create", "--role", "agent", "--employee", email, "--database-url", url
        ).strip()
        yield demo
    finally:
        server.stop()


def _operations(document: DocumentNode) -> list[DocumentNode]:
    fragments = [node for node in document.definitions if isinstance(node, FragmentDefinitionNode)]
    return [
        DocumentNode(definitions=(node, *fragments))
        for node in document.definitions
        if isinstance(node, OperationDefinitionNode)
    ]


def _root_field(operation: OperationDefinitionNode, response_key: str) -> str:
    """The schema field behind a response key (an alias such as `survey: submitFeedback`)."""
    for selection in operation.selection_set.selections:
        alias = getattr(selection, "alias", None)
        name = getattr(selection, "name", None)
        if name is not None and (alias.value if alias else name.value) == response_key:
            return str(name.value)
    return response_key


def _user_errors(answer: Any) -> list[Any]:
    if isinstance(answer, dict):
        found = list(answer.get("userErrors") or [])
        return found + [error for value in answer.values() for error in _user_errors(value)]
    if isinstance(answer, list):
        return [error for item in answer for error in _user_errors(item)]
    return []


def test_the_docs_show_every_data_query_and_mutation() -> None:
    assert any(example.path.name == "README.md" for example in EXAMPLES)
    shown = "\n".join(example.text for example in EXAMPLES)
    root_fields = [*schema._schema.query_type.fields, *schema._schema.mutation_type.fields]  # type: ignore[union-attr]
    assert [name for name in root_fields if not re.search(rf"\b{name}\b", shown)] == []


@pytest.mark.parametrize("database_url", BACKENDS, indirect=True, scope="module")
@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_the_example_runs_as_written(example: Example, demo: Demo) -> None:
    text = example.text
    for placeholder, name in PLACEHOLDERS.items():
        if f'"{placeholder}"' in text:
            assert name in demo.values, f"{example.name}: no {name} known yet for {placeholder}"
            text = text.replace(f'"{placeholder}"', f'"{demo.values[name]}"')
    codes = []
    for operation_document in _operations(parse(text)):
        problems = validate(schema._schema, operation_document)
        assert problems == [], f"{example.name}: {[problem.message for problem in problems]}"
        operation = operation_document.definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        if operation.operation == OperationType.SUBSCRIPTION:
            continue
        variables = {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            assert name in demo.values, f"{example.name}: no value for ${name}"
            variables[name] = demo.values[name]
        status, body = demo.server.query(print_ast(operation_document), variables, role=example.role)
        errors = body.get("errors") or []
        codes += [error.get("extensions", {}).get("code") for error in errors]
        if example.expected_code is None:
            assert status == 200 and errors == [], f"{example.name}: {body}"
            assert _user_errors(body["data"]) == [], f"{example.name}: {body['data']}"
            # A key or code the demo data does not have answers null, not an error: refuse that too.
            missing = [field for field, answer in body["data"].items() if answer is None]
            assert missing == [], f"{example.name}: {missing} answered null"
        demo.remember(operation, body.get("data"))
    if example.expected_code is not None:
        assert example.expected_code in codes, f"{example.name}: expected {example.expected_code}, got {codes}"
