"""Commands registered on the root group."""

from __future__ import annotations

from cli.app import main  # noqa: F401
