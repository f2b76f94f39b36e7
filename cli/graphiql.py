"""`segmenta fetch-graphiql`: store GraphiQL's files on this machine, so the page needs no CDN."""

from __future__ import annotations

from pathlib import Path

import click

from segmenta.cli.app import main
from segmenta.schema.graphiql import ASSET_DIR_SETTING, DEFAULT_REGISTRY, FetchError, asset_dir, fetch_assets


@main.command("fetch-graphiql")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Where to store the files (default: {ASSET_DIR_SETTING}, else segmenta/graphiql in the user's data folder).",
)
@click.option("--registry", default=DEFAULT_REGISTRY, show_default=True, help="The npm registry to download from.")
def fetch_graphiql(directory: Path | None, registry: str) -> None:
    """Download GraphiQL and React (pinned versions, checked) from the npm registry, once.

    `segmenta serve` then serves the GraphiQL page's files itself, so the page works on a machine
    without internet access. The server looks in the same folder: give it the same --dir as
    SEGMENTA_GRAPHIQL_DIR.
    """
    target = directory if directory is not None else asset_dir()
    try:
        written = fetch_assets(target, registry=registry)
    except FetchError as error:
        raise click.ClickException(f"{error}; nothing was written") from error
    click.echo(f"stored {len(written)} files in {target}")
