"""API keys: who may call the routes that need one.

Keys come from ``LPR_API_KEYS`` and ``LPR_API_KEYS_FILE`` (one per line, for a
Secret mounted by Kubernetes). A client sends one as ``Authorization: Bearer
<key>`` or ``X-API-Key: <key>``; it is compared with every configured key in
constant time (:func:`hmac.compare_digest`), so the answer's timing says
nothing about how much of a key was right. A missing or wrong key is a 401 in
the service's error shape with ``WWW-Authenticate``.

Every route needs a key unless it declares itself open with
``openapi_extra=OPEN`` (OpenAPI's own ``security: []``): the probes, the
metrics, the page and the docs. A new route is therefore protected by default.
Keys never reach logs or metrics: the access log and the rate limiter see
:func:`key_hash`, the first 12 hex digits of the key's SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response
from service.request_context import KEY_HASH

#: ``openapi_extra`` of a route anyone may call, keys or not.
OPEN: dict = {"security": []}

#: The OpenAPI security schemes the protected routes accept.
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY = [{"bearer": []}, {"apiKey": []}]


def key_hash(key: str) -> str:
    """What logs and the rate limiter know of a key: enough to tell keys apart, not to use one."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def is_open(route: BaseRoute) -> bool:
    return isinstance(route, APIRoute) and (route.openapi_extra or {}).get("security") == []


class ProtectedPaths:
    """Whether a path needs a key: the routes' patterns, with the answer remembered per path.

    A service sees a handful of paths, so after the first request each check is
    one dict lookup; unknown paths (scanners) are not remembered beyond a bound.
    """

    def __init__(self, patterns: Sequence[re.Pattern[str]], remember: int = 1024) -> None:
        self.patterns = list(patterns)
        self.remember = remember
        self._known: dict[str, bool] = {}

    def __call__(self, path: str) -> bool:
        known = self._known.get(path)
        if known is None:
            known = any(pattern.match(path) for pattern in self.patterns)
            if len(self._known) < self.remember:
                self._known[path] = known
        return known


def protected_paths(routes: Iterable[BaseRoute]) -> ProtectedPaths:
    """Which paths need a key: every API route's that does not declare itself open.

    Built once per app and shared by the key check and the rate limiter, which
    guard the same routes.
    """
    return ProtectedPaths(
        [route.path_regex for route in routes if isinstance(route, APIRoute) and not is_open(route)]
    )


def presented_key(scope: Scope) -> str | None:
    """The key a request carries, from ``Authorization: Bearer`` or ``X-API-Key``."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


class APIKeyMiddleware:
    """Refuses requests to protected routes that carry no valid key; notes the key's hash on the scope."""

    def __init__(self, app: ASGIApp, *, keys: Sequence[str], protected: ProtectedPaths) -> None:
        if not keys:
            raise ValueError("APIKeyMiddleware needs at least one key")
        self.app = app
        self.keys = [(key.encode(), key_hash(key)) for key in keys]
        self.protected = protected

    def _match(self, presented: str) -> str | None:
        candidate = presented.encode()
        found = None
        for key, digest in self.keys:  # every key is compared, so timing does not tell which matched
            if hmac.compare_digest(candidate, key):
                found = digest
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope)
        digest = self._match(presented) if presented is not None else None
        if digest is None:
            code, message = (
                ("missing_api_key", "this route needs an API key: Authorization: Bearer <key> or X-API-Key")
                if presented is None
                else ("invalid_api_key", "the API key is not valid")
            )
            response = error_response(code, message, 401)
            challenge = 'Bearer realm="lpr"' + ("" if presented is None else ', error="invalid_token"')
            response.headers["www-authenticate"] = challenge
            await response(scope, receive, send)
            return
        scope[KEY_HASH] = digest
        await self.app(scope, receive, send)
