"""Request ids and access logs, for every request, outermost in the middleware stack.

A client's ``X-Request-Id`` is kept when it is a sane token (at most 128
printable ASCII characters, no spaces), so a caller can follow its own id
through load balancers and logs; otherwise one is generated. The id is echoed
on every response, errors and refusals included, and error bodies carry it
(:mod:`service.context`). With ``LPR_ACCESS_LOG`` each request ends in one log
line (JSON with ``LPR_LOG_FORMAT=json``): time, request id, method, path,
status, duration, model version and the API key's short hash (never the key).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import context

access_logger = logging.getLogger("service.access")

HEADER = b"x-request-id"
_SANE = re.compile(rb"[\x21-\x7e]{1,128}")

#: Set by the API-key middleware on ``scope``: the short hash of the key that was accepted.
KEY_HASH = "lpr.key_hash"


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _SANE.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    """Gives each request its id (echoed on the response) and, when asked, its access-log line."""

    def __init__(self, app: ASGIApp, *, access_log: bool, model_version: Callable[[], str | None]) -> None:
        self.app = app
        self.access_log = access_log
        self.model_version = model_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or os.urandom(16).hex()  # uuid4's randomness, without the object
        header = (HEADER, rid.encode("ascii"))
        id_token = context.request_id.set(rid)
        v2_token = context.v2_protocol.set(scope["path"].startswith("/v2"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            context.request_id.reset(id_token)
            context.v2_protocol.reset(v2_token)
            if self.access_log:
                access_logger.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": rid,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "model_version": self.model_version(),
                        "key": scope.get(KEY_HASH),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
