"""The `segmenta` command line."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Segmenta: customer segmentation and team routing."""
