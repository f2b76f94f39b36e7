"""`segmenta explain FILE --customer CODE`: why a customer lands where it does under a rule file.

Prints the explanation (team, deciding rule, segments, tags, the current
assignment and the lock/strategy/capacity effects on the manager, then every rule
with ✓/✗ and the first failing comparison) on stdout.  Reads only; nothing is
saved.  Exit status: 0 explained, 1 the file has errors or there is no such
customer, 2 the file or database cannot be used.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

import click
from rich.console import Console

from segmenta.cli.app import main
from segmenta.cli.routing import as_of_option, database_option, file_argument
from segmenta.cli.rules import EXIT_ERRORS, EXIT_OK, EXIT_UNUSABLE, read_rules
from segmenta.domain.customers.records import get_customer_by_code
from segmenta.domain.errors import UserError
from segmenta.domain.routing.explanations import RulesHaveErrors, explain_customer
from segmenta.dsl.render import render
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


async def _explain(source: str, code: str, database_url: str | None, as_of: datetime | None) -> str:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            customer = await get_customer_by_code(session, code)
            if customer is None:
                raise UserError(f"no customer with code {code!r}", field="customer", code="not_found")
            result = await explain_customer(session, customer.id, source=source, as_of=as_of)
            return f"Customer {customer.code} ({customer.name})\n{result.text}"
    finally:
        await engine.dispose()


@main.command()
@file_argument
@click.option("--customer", "code", required=True, help="The customer's code.")
@database_option
@as_of_option
def explain(file: str, code: str, database_url: str | None, as_of: datetime | None) -> None:
    """Explain how the rules in FILE route the customer with code CODE (changes nothing)."""
    source = read_rules(file)
    try:
        text = asyncio.run(_explain(source, code, database_url, as_of))
    except RulesHaveErrors as error:
        err.print(render(error.diagnostics, source, file, color=err.is_terminal), end="", markup=False)
        sys.exit(EXIT_ERRORS)
    except UserError as error:
        err.print(f"error: {error.message}", markup=False)
        sys.exit(EXIT_ERRORS)
    except Exception as error:  # the database cannot be reached or used
        err.print(f"error: {type(error).__name__}: {error}", markup=False)
        sys.exit(EXIT_UNUSABLE)
    out.print(text, markup=False)
    sys.exit(EXIT_OK)
