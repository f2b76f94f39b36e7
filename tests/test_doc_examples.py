"""Every GraphQL example in the README and docs/ runs, in the order written, against the demo data
served by the real `segmenta serve`, so a doc cannot drift from the code.

An example is a ```graphql block. Each operation in it runs on its own (fragments shared), as the
admin, and must answer without `errors` and with every `userErrors` list empty. Values an example
cannot know are filled in by name: a variable `$customer` (or a string "CUSTOMER_ID") gets a
customer of the demo data, `$employee`/"EMPLOYEE_ID" an employee, `$ruleset`/"RULESET_ID" the
ruleset the example saved last (else the active one), `$run`/"RUN_ID" the run it started last.
A root field answering null (a key or code the demo data does not have) fails the example too.
A block preceded by `<!-- example as ROLE -->` runs with a token of that role (viewer, or agent:
bound to an employee), and one preceded by `<!-- example expects CODE -->` (or both, `<!-- example
as agent expects FORBIDDEN -->`) must fail with that error code instead.
Subscriptions are checked against the schema, not run (they wait for events).
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
from tests.live_server import SEGMENTA, LiveServer, segmenta

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:<!-- example(?: as (?P<role>admin|viewer|agent))?(?: expects (?P<code>[A-Z_]+))? -->\n)?"
    r"```graphql\n(?P<text>.*?)\n```",
    re.S,
)
TOKEN = re.compile(r"/graphql\?token=(sgm_[A-Za-z0-9_-]+)")
PLACEHOLDERS = {"CUSTOMER_ID": "customer", "EMPLOYEE_ID": "employee", "RULESET_ID": "ruleset", "RUN_ID": "run"}


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
            " employees(active: true) { id } activeRuleset { id } }"
        )
        self.values: dict[str, str] = {
            "customer": found["customers"]["edges"][0]["node"]["id"],
            "employee": found["employees"][0]["id"],
            "ruleset": found["activeRuleset"]["id"],
        }

    def data(self, query: str) -> Any:
        status, body = self.server.query(query)
        assert status == 200 and "errors" not in body, body
        return body["data"]

    def remember(self, answer: Any) -> None:
        """The ids an operation created that a later one may name."""
        if isinstance(answer, dict):
            for key, value in answer.items():
                if key == "ruleset" and isinstance(value, dict) and "id" in value:
                    self.values["ruleset"] = value["id"]
                elif key == "run" and isinstance(value, dict) and "id" in value:
                    self.values["run"] = value["id"]
                self.remember(value)
        elif isinstance(answer, list):
            for item in answer:
                self.remember(item)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("doc-examples")
    url = f"sqlite+aiosqlite:///{folder / 'demo.db'}"
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


def _user_errors(answer: Any) -> list[Any]:
    if isinstance(answer, dict):
        found = list(answer.get("userErrors") or [])
        return found + [error for value in answer.values() for error in _user_errors(value)]
    if isinstance(answer, list):
        return [error for item in answer for error in _user_errors(item)]
    return []


def test_the_docs_hold_examples() -> None:
    assert len(EXAMPLES) >= 15
    assert any(example.path.name == "README.md" for example in EXAMPLES)


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
        demo.remember(body.get("data"))
    if example.expected_code is not None:
        assert example.expected_code in codes, f"{example.name}: expected {example.expected_code}, got {codes}"
