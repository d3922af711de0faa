"""Request body size limits, enforced before and while the body is read.

FastAPI parses a multipart body completely before the endpoint runs, so a size
check in the endpoint would come after the whole upload was buffered. This
middleware refuses an oversized declared ``Content-Length`` before handing the
body to the app, and stops a chunked (undeclared) body as soon as it passes the
limit. Nothing of a refused body is kept in memory.

Most HTTP clients (httpx, requests, urllib) send the whole body before they read
the answer. Closing the connection on them while they are still sending makes
the kernel reset it, and the client sees "connection reset" instead of the 413.
So the 413 is sent at once and the connection is left open: uvicorn's
HTTP/1.1 protocol discards the rest of a request whose response is complete as
it arrives, then takes the next request on the same connection, as nginx's
lingering close does (and, like it, closes a connection whose client keeps
sending past the keep-alive timeout).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import error_response
from service.multipart import UPLOAD_EXTENSION


def upload_limits(routes: Iterable[BaseRoute], settings: Settings) -> dict[str, int]:
    """The body limit of every upload route, from how it declares its body (``form_body``).

    One file: one file at the upload limit plus multipart framing; many: every
    allowed file at its largest.
    """
    limits = {}
    for route in routes:
        kind = (route.openapi_extra or {}).get(UPLOAD_EXTENSION) if isinstance(route, APIRoute) else None
        if kind is not None:
            limits[route.path] = (
                settings.max_batch_body_bytes if kind == "many" else settings.max_single_body_bytes
            )
    return limits


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Per-path byte limits for request bodies; paths not listed are not limited."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int]) -> None:
        self.app = app
        self.limits = dict(limits)

    @staticmethod
    def _declared_length(scope: Scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            "request_too_large",
            f"the request body is over the limit of {limit} bytes for {scope['path']}",
            413,
            limit=limit,
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = self._declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, limit)
            return

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # The parser may turn our exception into its own 400; the 413 below wins.
            if exceeded:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not response_started:
            await self._refuse(scope, receive, send, limit)
