"""Request body size limits, enforced before and while the body is read.

FastAPI parses a multipart body completely before the endpoint runs, so a size
check in the endpoint would come after the whole upload was buffered. This
middleware refuses an oversized declared ``Content-Length`` before handing the
body to the app, and stops a chunked (undeclared) body as soon as it passes the
limit. Nothing of a refused body is kept in memory.

The 413 goes out at once, but most HTTP clients (httpx, requests, urllib) send
the whole body before they read the answer, and a server that closes a
connection with unread data makes the kernel reset it: the client then sees
"connection reset" instead of the 413. So the connection is never closed on a
client still sending:

- on a kept-alive connection the answer is complete at once, and uvicorn's
  HTTP/1.1 protocol discards the rest of the body as it arrives, then takes the
  next request on the same connection;
- on a connection that closes after its answer (``Connection: close``, which
  urllib and many embedded clients send, or HTTP/1.0) the answer's bytes still
  go out at once, but the response is completed, and the connection closed,
  only once the rest of the body has been read and thrown away: nginx's
  lingering close. It is bounded (``LPR_LINGER_BYTES``, ``LPR_LINGER_SECONDS``),
  so a client that keeps sending past either bound is cut off, as nginx does.

A client that asked ``Expect: 100-continue`` and was refused before anything
was read has sent no body: its answer is complete at once (reading would make
uvicorn invite the body).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import anyio
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import error_response
from service.multipart import UPLOAD_EXTENSION


@dataclass(frozen=True)
class BodyLimits:
    """The byte limit of each upload path, and how much of a refused body is drained before a close."""

    paths: Mapping[str, int]
    linger_seconds: float
    linger_bytes: int


def upload_limits(routes: Iterable[BaseRoute], settings: Settings) -> BodyLimits:
    """The body limit of every upload route, from how it declares its body (``form_body``).

    One file: one file at its upload limit plus multipart framing (a crop's, or a
    whole photo's for a ``photo`` route); many: every allowed file at its largest.
    """
    by_kind = {
        "one": settings.max_single_body_bytes,
        "photo": settings.max_photo_body_bytes,
        "many": settings.max_batch_body_bytes,
    }
    paths = {}
    for route in routes:
        kind = (route.openapi_extra or {}).get(UPLOAD_EXTENSION) if isinstance(route, APIRoute) else None
        if kind is not None:
            paths[route.path] = by_kind[kind]
    return BodyLimits(paths, settings.linger_seconds, settings.linger_bytes)


def _header_tokens(scope: Scope, name: bytes) -> list[bytes]:
    return [
        token.strip().lower() for key, value in scope["headers"] if key == name for token in value.split(b",")
    ]


def _closes_after_answer(scope: Scope) -> bool:
    """Whether the server closes this connection once the request is answered, as HTTP/1.1 says."""
    return scope.get("http_version") == "1.0" or b"close" in _header_tokens(scope, b"connection")


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Per-path byte limits for request bodies; paths not listed are not limited."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    @staticmethod
    def _declared_length(scope: Scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    async def _drain(self, receive: Receive) -> None:
        """Read and drop the rest of the body, within the lingering-close bounds."""
        drained = 0
        with anyio.move_on_after(self.limits.linger_seconds):
            while drained <= self.limits.linger_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int, *, sending: bool) -> None:
        """The 413; ``sending``: the client may still be sending its body."""
        response = error_response(
            "request_too_large",
            f"the request body is over the limit of {limit} bytes for {scope['path']}",
            413,
            limit=limit,
        )
        if not (sending and _closes_after_answer(scope)):
            await response(scope, receive, send)
            return
        # Every byte of the answer now; its end, after which the server closes, once the body is drained.
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        await self._drain(receive)
        await send({"type": "http.response.body", "body": b""})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.paths.get(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = self._declared_length(scope)
        if declared is not None and declared > limit:
            expects_continue = b"100-continue" in _header_tokens(scope, b"expect")
            await self._refuse(scope, receive, send, limit, sending=not expects_continue)
            return

        received = 0
        exceeded = False
        more_body = True
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded, more_body
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                more_body = message.get("more_body", False)
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
            await self._refuse(scope, receive, send, limit, sending=more_body)
