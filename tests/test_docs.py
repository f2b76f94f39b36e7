"""Documentation is part of the product: every command, option and setting is documented,
and the README's two commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click

from segmenta.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(path.read_text(encoding="utf-8") for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, prefix=f"{full} "))
    return found


def test_every_command_and_option_is_documented() -> None:
    missing = []
    for name, command in _commands(main):
        if f"segmenta {name}" not in DOCS:
            missing.append(f"segmenta {name}")
        for param in command.params:
            for flag in getattr(param, "opts", []):
                if flag.startswith("--") and flag not in DOCS:
                    missing.append(f"segmenta {name} {flag}")
    assert not missing, f"undocumented: {missing}"


def test_every_setting_is_documented() -> None:
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("dsl", "domain", "storage", "schema", "cli")
        for path in (ROOT / folder).rglob("*.py")
    ) + (ROOT / "server.py").read_text(encoding="utf-8")
    settings = set(re.findall(r"SEGMENTA_[A-Z_]+", code))
    assert "SEGMENTA_DATABASE_URL" in settings
    undocumented = sorted(name for name in settings if name not in DOCS)
    assert not undocumented, f"undocumented settings: {undocumented}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```\n(.+?)\n```", readme)
    assert len(commands) >= 2
    demo_command, test_command = commands[0], commands[1]
    assert "segmenta demo" in demo_command
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# Written in pieces so that this file does not match itself.
OUTSIDE_REFERENCES = ("SPEC " + "§", "../" + "shared", "shared/" + "SPEC")


def test_the_repository_refers_to_nothing_outside_it() -> None:
    """The docs are the reference: no tracked file cites sections of an outside document or
    points at a path beside the repository."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    names = [name for name in listing.decode("utf-8").split("\0") if name]
    assert "README.md" in names and "tests/test_docs.py" in names
    found = []
    for name in names:
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            found.extend(f"{name}:{number}: {needle!r}" for needle in OUTSIDE_REFERENCES if needle in line)
    assert not found, "references to something outside the repository:\n" + "\n".join(found)
