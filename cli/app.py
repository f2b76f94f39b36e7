"""The root `segmenta` command group; subcommands live in cli.rules, cli.data and cli.server."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="segmenta")
def main() -> None:
    """Segmenta: customer segmentation and team routing."""
