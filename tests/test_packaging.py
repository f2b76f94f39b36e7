"""The distribution: one top-level name, `segmenta`, holding the repository's product folders.

The wheel is built from a copy of the tree (setuptools, no network) and imported from where it was
unpacked, so a folder, data file or import that only works from the repository shows up here.
"""

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_FOLDERS = ("cli", "domain", "dsl", "schema", "storage", "workbench")
FIRST_PARTY = {*PRODUCT_FOLDERS, "server"}


def _tracked(folder: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [Path(name) for name in listed]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "server.py"):
        shutil.copy(ROOT / name, source / name)
    for folder in PRODUCT_FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        check=True, capture_output=True,
    )
    (built,) = out.glob("segmenta-*.whl")
    return built


def test_the_wheel_adds_exactly_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"segmenta"}


def test_every_product_file_is_in_the_wheel_under_segmenta(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"segmenta/{path.as_posix()}" for folder in PRODUCT_FOLDERS for path in _tracked(folder)}
    assert expected - names == set()
    assert "segmenta/server.py" in names


def test_the_unpacked_wheel_routes_with_its_own_grammar_rules_and_migrations(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    program = """
import asyncio, sys
from pathlib import Path
import segmenta.server
from segmenta.domain.seed import SAMPLE_RULES_PATH
from segmenta.dsl import compile_rules
from segmenta.storage.engine import create_engine
from segmenta.storage.migrate import upgrade

site = Path(sys.argv[1])
assert Path(segmenta.server.__file__).is_relative_to(site), segmenta.server.__file__
rules = compile_rules(SAMPLE_RULES_PATH.read_text(encoding="utf-8"))
assert Path(SAMPLE_RULES_PATH).is_relative_to(site)
asyncio.run(upgrade(create_engine("sqlite+aiosqlite:///" + sys.argv[2])))
print(len(rules.labels))
"""
    # -I leaves out the working directory and PYTHONPATH; the unpacked wheel goes first on sys.path,
    # ahead of the editable install's finder.
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(unpacked)!r}); exec({program!r})",
         str(unpacked), str(tmp_path / "packaged.db")],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0


def _absolute_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_nothing_imports_a_product_folder_by_its_bare_name() -> None:
    # Tests put the repository root on sys.path, where `import dsl` would still work; installed, it would not.
    python_files = [ROOT / "server.py"] + [
        path for folder in (*PRODUCT_FOLDERS, "tests", "bench") for path in (ROOT / folder).rglob("*.py")
    ]
    bare = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in python_files
        for line, module in _absolute_imports(path)
        if module.split(".")[0] in FIRST_PARTY
    ]
    assert bare == []
