"""The GraphiQL page: which third-party files it needs, where they come from, and the page itself.

GraphiQL and React are not part of Segmenta. The page takes them from a folder on the server
machine when `segmenta fetch-graphiql` has put them there (downloaded once from the npm registry,
each package checked against its pinned sha512, each file against its pinned sha384), and from a
public CDN otherwise. When neither loads (no internet, a network that blocks CDNs), the page says
so in plain words and shows the same request as a curl command.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TEMPLATE = Path(__file__).with_name("graphiql.html")
ASSET_ROUTE = "/graphiql"
ASSET_DIR_SETTING = "SEGMENTA_GRAPHIQL_DIR"
# Seconds the page waits for GraphiQL's scripts before it says they did not come.
LOAD_WAIT = 20
DEFAULT_REGISTRY = "https://registry.npmjs.org"
# The largest tarball accepted (graphiql's is about 3.7 MB) and how long one download may take.
MAX_TARBALL_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT = 120


@dataclass(frozen=True)
class Package:
    """One npm package version and the checksum of its tarball (npm's `dist.integrity`)."""

    name: str
    version: str
    integrity: str

    @property
    def tarball_path(self) -> str:
        return f"{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


@dataclass(frozen=True)
class Asset:
    """A file the page loads: where it is in its package, and its sha384 (subresource integrity)."""

    name: str
    package: Package
    path: str
    integrity: str

    @property
    def cdn_url(self) -> str:
        return f"https://unpkg.com/{self.package.name}@{self.package.version}/{self.path}"

    @property
    def is_stylesheet(self) -> bool:
        return self.name.endswith(".css")


REACT = Package(
    "react", "18.2.0", "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ=="
)
REACT_DOM = Package(
    "react-dom", "18.2.0", "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g=="
)
GRAPHIQL = Package(
    "graphiql", "3.8.3", "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw=="
)
EXPLORER = Package(
    "@graphiql/plugin-explorer",
    "1.0.2",
    "sha512-9j+kg2UjtLZD5EBmGjeWHkoVVxtbShYg2DzbUVebibnZYZM/iMBEF4vaccXJIAm5KaomIPLx0aoNs4LbODyc3Q==",
)
PACKAGES = (REACT, REACT_DOM, GRAPHIQL, EXPLORER)
# In load order: stylesheets first, then React before what uses it.
ASSETS = (
    Asset("graphiql.min.css", GRAPHIQL, "graphiql.min.css", "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM"),
    Asset("explorer.css", EXPLORER, "dist/style.css", "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi"),
    Asset("react.production.min.js", REACT, "umd/react.production.min.js", "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"),
    Asset("react-dom.production.min.js", REACT_DOM, "umd/react-dom.production.min.js", "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh"),
    Asset("graphiql.min.js", GRAPHIQL, "graphiql.min.js", "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie"),
    Asset("explorer.umd.js", EXPLORER, "dist/index.umd.js", "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9"),
)
ASSETS_BY_NAME = {asset.name: asset for asset in ASSETS}


def asset_dir(environ: Mapping[str, str] | None = None) -> Path:
    """SEGMENTA_GRAPHIQL_DIR, or `segmenta/graphiql` under the user's data folder (XDG_DATA_HOME)."""
    environ = os.environ if environ is None else environ
    configured = environ.get(ASSET_DIR_SETTING, "").strip()
    if configured:
        return Path(configured).expanduser()
    data_home = environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(data_home) / "segmenta" / "graphiql"


def subresource_integrity(content: bytes, algorithm: str) -> str:
    """`algorithm-base64(digest)`, the form of npm's `dist.integrity` and HTML's `integrity`."""
    digest = hashlib.new(algorithm, content).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode('ascii')}"


# (path, size, modification time) of files already found to match their pin: a page load then
# costs a stat per file, not a hash of 4 MB.
_verified: set[tuple[str, int, int]] = set()


def local_asset(directory: Path, name: str) -> Path | None:
    """The stored file of a known asset whose content matches its pin, or None."""
    asset = ASSETS_BY_NAME.get(name)
    if asset is None:
        return None
    path = directory / name
    try:
        status = path.stat()
        key = (str(path), status.st_size, status.st_mtime_ns)
        if key in _verified:
            return path
        content = path.read_bytes()
    except OSError:
        return None
    if subresource_integrity(content, "sha384") != asset.integrity:
        return None
    _verified.add(key)
    return path


def has_local_assets(directory: Path) -> bool:
    return all(local_asset(directory, asset.name) is not None for asset in ASSETS)


def _tag(asset: Asset, url: str) -> str:
    quoted_url, integrity = html.escape(url, quote=True), html.escape(asset.integrity, quote=True)
    failed = 'onerror="segmentaAssetFailed(this)"'
    if asset.is_stylesheet:
        return f'<link rel="stylesheet" href="{quoted_url}" integrity="{integrity}" crossorigin {failed} />'
    return f'<script src="{quoted_url}" integrity="{integrity}" crossorigin defer {failed}></script>'


def render_page(directory: Path) -> str:
    """The page, loading its files from this server when `directory` holds them all, else from the CDN."""
    local = has_local_assets(directory)
    tags = [_tag(asset, f"{ASSET_ROUTE}/{asset.name}" if local else asset.cdn_url) for asset in ASSETS]
    settings = {"assetSource": "this server" if local else "the unpkg.com CDN", "loadWait": LOAD_WAIT}
    return (
        TEMPLATE.read_text(encoding="utf-8")
        .replace("<!-- ASSETS -->", "\n    ".join(tags))
        .replace("/* SETTINGS */ {}", json.dumps(settings))
    )


class FetchError(Exception):
    """A package could not be downloaded, or is not what its pin says; nothing was written."""


Opener = Callable[[str, float], IO[bytes]]


def _open(url: str, timeout: float) -> IO[bytes]:
    response: IO[bytes] = urllib.request.urlopen(url, timeout=timeout)
    return response


def _download(url: str, opener: Opener) -> bytes:
    try:
        with opener(url, DOWNLOAD_TIMEOUT) as response:
            content = response.read(MAX_TARBALL_BYTES + 1)
    except OSError as error:
        raise FetchError(f"could not download {url}: {error}") from error
    if len(content) > MAX_TARBALL_BYTES:
        raise FetchError(f"{url} is larger than {MAX_TARBALL_BYTES} bytes")
    return content


def _files_of(package: Package, tarball: bytes) -> dict[str, bytes]:
    """The assets of `package` read from its tarball, each checked against its pin."""
    wanted = {f"package/{asset.path}": asset for asset in ASSETS if asset.package == package}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for member in archive.getmembers():
                asset = wanted.get(member.name)
                if asset is None or not member.isfile():
                    continue
                extracted = archive.extractfile(member)
                if extracted is not None:
                    found[asset.name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise FetchError(f"{package.name}@{package.version}: not a readable package tarball ({error})") from error
    for asset in wanted.values():
        content = found.get(asset.name)
        if content is None:
            raise FetchError(f"{package.name}@{package.version} has no {asset.path}")
        if subresource_integrity(content, "sha384") != asset.integrity:
            raise FetchError(f"{package.name}@{package.version}: {asset.path} does not match its pinned checksum")
    return found


def fetch_assets(directory: Path, *, registry: str = DEFAULT_REGISTRY, opener: Opener = _open) -> list[Path]:
    """Download the pinned packages from the npm registry and store the page's files in `directory`.

    Every tarball is checked against its pinned sha512 and every file against its sha384 before
    anything is written; then each file is written to a temporary name and renamed into place.
    """
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        url = f"{registry.rstrip('/')}/{package.tarball_path}"
        tarball = _download(url, opener)
        if subresource_integrity(tarball, "sha512") != package.integrity:
            raise FetchError(f"{url} does not match the pinned checksum of {package.name}@{package.version}")
        files.update(_files_of(package, tarball))
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a server running as another user reads it
        os.replace(temporary, directory / name)
        written.append(directory / name)
    return written
