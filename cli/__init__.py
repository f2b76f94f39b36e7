"""The `segmenta` command line: importing the command modules registers their commands."""

from segmenta.cli import data, explain, graphiql, report, routing, rules, server  # noqa: F401  (registration)
from segmenta.cli.app import main

__all__ = ["main"]
