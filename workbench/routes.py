"""The workbench's HTTP routes: the page at /workbench and its files at /workbench/static/NAME.

Only files that exist directly in `static/` with a known suffix are served: a name with a path
separator, a dot-file or an unknown suffix is a 404, so no request can read outside the folder.
The files change only with the installed package, so the browser may cache them briefly and must
revalidate (ETag) after that; the page itself is never cached, so a new release is picked up.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE = "index.html"
ROUTE = "/workbench"
STATIC_ROUTE = ROUTE + "/static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A plain file name: letters, digits, dashes and underscores, one dot before a known suffix.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.(?:html|js|css|svg)")
STATIC_CACHE = "public, max-age=300, must-revalidate"
# The page must not be framed by another site, and runs no script but its own files and talks only to its
# own server.  Inline styles are allowed: the charts set SVG `style` attributes.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


def static_file(name: str) -> Path | None:
    """The file `name` of the static folder, or None when the name is not a plain, known, existing file."""
    if not SAFE_NAME.fullmatch(name):
        return None
    path = STATIC_DIR / name
    if path.parent != STATIC_DIR or not path.is_file():
        return None
    return path


async def page(request: Request) -> Response:
    return FileResponse(
        STATIC_DIR / PAGE,
        media_type=MEDIA_TYPES[".html"],
        headers={"Cache-Control": "no-cache", **SECURITY_HEADERS},
    )


async def asset(request: Request) -> Response:
    path = static_file(request.path_params["name"])
    if path is None:
        return PlainTextResponse("not found", status_code=404, headers={"X-Content-Type-Options": "nosniff"})
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": STATIC_CACHE, "X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[BaseRoute]:
    """The workbench's routes, for the server's app."""
    return [
        Route(ROUTE, page, methods=["GET"]),
        Route(ROUTE + "/", page, methods=["GET"]),
        Route(STATIC_ROUTE + "/{name}", asset, methods=["GET"]),
    ]
