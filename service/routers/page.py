"""``GET /``: the try-it page, and the two files it loads from ``/static``.

The page is plain HTML, CSS and JavaScript shipped inside the package
(``service/static``, package data), so it needs no build step and no CDN, and
works wherever the API does, container included. The files are read once, at
import: a packaging mistake fails at start-up instead of as a 404 later.

The routes stay out of the OpenAPI schema: they are not API, and schema-driven
clients and fuzzers should not see them. The Content-Security-Policy lets the
page load and contact nothing but this server, which is what "no CDN" means
in practice and also blunts any script injection through a file name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from service.auth import OPEN

router = APIRouter(include_in_schema=False)

#: Beside the package's modules, in the checkout and in an installed wheel alike (package data).
_STATIC = Path(__file__).resolve().parents[1] / "static"

#: Served under ``/static/<name>``: the only files the page loads besides itself.
ASSETS: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

#: ``blob:`` images are the user's own uploads, previewed before they are sent.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_HEADERS = {
    # Revalidate on every load, so a redeployed service never runs a stale script against a new API.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_INDEX = (_STATIC / "index.html").read_bytes()
_ASSET_BODIES = {name: (_STATIC / name).read_bytes() for name in ASSETS}


@router.get("/", response_class=HTMLResponse, openapi_extra=OPEN)
async def index() -> Response:
    """The page: pick or drop images, see what the model reads in them."""
    return HTMLResponse(_INDEX, headers={**_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY})


def _asset_endpoint(name: str) -> Callable[[], Awaitable[Response]]:
    """One route per file, with fixed paths, so the metrics count each under its own label."""
    body, media_type = _ASSET_BODIES[name], ASSETS[name]

    async def asset() -> Response:
        return Response(body, media_type=media_type, headers=_HEADERS)

    asset.__name__ = f"static_{name.replace('.', '_')}"
    return asset


for _name in ASSETS:
    router.add_api_route(f"/static/{_name}", _asset_endpoint(_name), methods=["GET"], openapi_extra=OPEN)
