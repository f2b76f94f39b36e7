"""The `segmenta` command line: importing the command modules registers their commands."""

from cli import data, explain, routing, rules, server  # noqa: F401  (registration)
from cli.app import main

__all__ = ["main"]
