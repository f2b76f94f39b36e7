"""schema/graphiql.py and `segmenta fetch-graphiql`: pinned files, checked downloads, the page with
and without local files, and in a real headless chromium against the real `segmenta serve` with
every request off this machine refused (as on a machine without internet)."""

from __future__ import annotations

import gzip
import io
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from segmenta.schema import graphiql
from segmenta.schema.graphiql import ASSETS, PACKAGES, FetchError, fetch_assets, local_asset, render_page
from tests.browser import headless_chromium
from tests.live_server import LiveServer, segmenta

WAIT_MS = 60_000


@pytest.fixture(scope="session")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The pinned packages, downloaded once per run from the npm registry (as the command does)."""
    found = {}
    for package in PACKAGES:
        url = f"{graphiql.DEFAULT_REGISTRY}/{package.tarball_path}"
        with urllib.request.urlopen(url, timeout=120) as response:
            found[url] = response.read()
    return found


def _opener(served: dict[str, bytes]) -> graphiql.Opener:
    def open_url(url: str, timeout: float) -> IO[bytes]:
        if url not in served:
            raise OSError(f"no route to {url}")
        return io.BytesIO(served[url])

    return open_url


@pytest.fixture(scope="session")
def asset_folder(tmp_path_factory: pytest.TempPathFactory, tarballs: dict[str, bytes]) -> Path:
    folder = tmp_path_factory.mktemp("graphiql")
    fetch_assets(folder, opener=_opener(tarballs))
    return folder


def test_fetch_stores_every_pinned_file_and_the_page_then_uses_them(asset_folder: Path) -> None:
    assert sorted(path.name for path in asset_folder.iterdir()) == sorted(asset.name for asset in ASSETS)
    page = render_page(asset_folder)
    assert "unpkg.com" not in page
    for asset in ASSETS:
        assert f'"{graphiql.ASSET_ROUTE}/{asset.name}" integrity="{asset.integrity}"' in page


def test_without_local_files_the_page_loads_them_from_the_cdn_with_their_checksums(tmp_path: Path) -> None:
    page = render_page(tmp_path)
    for asset in ASSETS:
        assert f'"{asset.cdn_url}" integrity="{asset.integrity}"' in page
    assert "segmenta fetch-graphiql" in page


def test_a_tampered_tarball_is_refused_and_nothing_is_written(tmp_path: Path, tarballs: dict[str, bytes]) -> None:
    served = dict(tarballs)
    last = list(served)[-1]
    damaged = bytearray(served[last])
    damaged[len(damaged) // 2] ^= 0xFF
    served[last] = bytes(damaged)
    target = tmp_path / "assets"
    with pytest.raises(FetchError, match="pinned checksum"):
        fetch_assets(target, opener=_opener(served))
    assert not target.exists()


def test_an_unreachable_registry_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="could not download https://registry.invalid/react/-/react-18.2.0.tgz"):
        fetch_assets(tmp_path / "assets", registry="https://registry.invalid", opener=_opener({}))
    assert not (tmp_path / "assets").exists()


def test_an_oversized_download_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphiql, "MAX_TARBALL_BYTES", 1000)
    url = f"{graphiql.DEFAULT_REGISTRY}/{PACKAGES[0].tarball_path}"
    with pytest.raises(FetchError, match="larger than 1000 bytes"):
        fetch_assets(tmp_path, opener=_opener({url: b"x" * 5000}))


def test_a_package_without_its_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real tarball shape without the expected file, pinned as if it were the package.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("package/README.md")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    tarball = gzip.compress(buffer.getvalue())
    package = graphiql.Package("react", "18.2.0", graphiql.subresource_integrity(tarball, "sha512"))
    monkeypatch.setattr(graphiql, "PACKAGES", (package,))
    monkeypatch.setattr(graphiql, "ASSETS", (graphiql.Asset("react.production.min.js", package, "umd/react.production.min.js", "sha384-x"),))
    with pytest.raises(FetchError, match="has no umd/react.production.min.js"):
        fetch_assets(tmp_path / "assets", opener=_opener({f"{graphiql.DEFAULT_REGISTRY}/{package.tarball_path}": tarball}))


def test_only_known_untampered_files_are_served(asset_folder: Path, tmp_path: Path) -> None:
    assert local_asset(asset_folder, "graphiql.min.js") == asset_folder / "graphiql.min.js"
    assert local_asset(asset_folder, "../graphiql/graphiql.min.js") is None
    assert local_asset(asset_folder, "secrets.txt") is None
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "react.production.min.js").write_bytes((asset_folder / "react.production.min.js").read_bytes() + b"//")
    assert local_asset(copy, "react.production.min.js") is None


def test_the_command_reports_a_failure_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "assets"
    with pytest.raises(Exception) as raised:
        segmenta("fetch-graphiql", "--dir", str(target), "--registry", "http://127.0.0.1:9")
    assert "could not download http://127.0.0.1:9/react/-/react-18.2.0.tgz" in str(raised.value)
    assert "nothing was written" in str(raised.value)
    assert not target.exists()


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory: pytest.TempPathFactory, asset_folder: Path) -> Iterator[LiveServer]:
    server = LiveServer.start(
        tmp_path_factory.mktemp("graphiql-offline"), customers=20, env={"SEGMENTA_GRAPHIQL_DIR": str(asset_folder)}
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server_without_assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("graphiql-none")
    server = LiveServer.start(folder, customers=20, env={"SEGMENTA_GRAPHIQL_DIR": str(folder / "none")})
    try:
        yield server
    finally:
        server.stop()


def _offline(page: object, server_url: str) -> list[str]:
    """Refuse every request that leaves the server under test; return the refused addresses."""
    refused: list[str] = []

    def route(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if url.startswith(server_url):
            route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(url)
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)  # type: ignore[attr-defined]
    return refused


def test_offline_graphiql_runs_a_query_with_the_token(offline_server: LiveServer) -> None:
    with headless_chromium() as browser:
        page = browser.new_page()
        refused = _offline(page, offline_server.url)
        page.goto(f"{offline_server.url}/graphql?token={offline_server.tokens['viewer']}")
        page.wait_for_selector(".graphiql-execute-button", timeout=WAIT_MS)
        assert "token=" not in page.url  # the token left the address bar for localStorage
        page.click(".graphiql-execute-button")
        result = page.wait_for_selector(".result-window:has-text('totalCount')", timeout=WAIT_MS)
        shown = result.inner_text()
        assert '"totalCount": 20' in shown
        assert "errors" not in shown
        assert [url for url in refused if "favicon" not in url] == []


def test_without_files_or_internet_the_page_says_so_and_shows_curl(server_without_assets: LiveServer) -> None:
    with headless_chromium() as browser:
        page = browser.new_page()
        refused = _offline(page, server_without_assets.url)
        page.goto(f"{server_without_assets.url}/graphql")
        page.wait_for_selector("#unavailable", timeout=WAIT_MS)
        text = page.inner_text("#unavailable")
        assert "GraphiQL could not be loaded" in text
        assert "segmenta fetch-graphiql" in text
        assert f"curl -X POST {server_without_assets.url}/graphql" in text
        assert any("unpkg.com" in url for url in refused)


def test_the_asset_route_serves_stored_files_and_nothing_else(offline_server: LiveServer, asset_folder: Path) -> None:
    with urllib.request.urlopen(f"{offline_server.url}/graphiql/graphiql.min.css", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/css")
        assert response.read() == (asset_folder / "graphiql.min.css").read_bytes()
    for name in ("..%2Fserver.py", "missing.js"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{offline_server.url}/graphiql/{name}", timeout=30)
        assert refused.value.code == 404
