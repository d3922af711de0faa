"""``POST /predict`` served straight from ASGI, past FastAPI's per-request machinery.

FastAPI's routing, dependency solving, ``Request`` object and exception
middlewares cost about 0.3 ms per request: more than half the framework floor,
and a sixth of a one-crop answer. The lane is the innermost layer of the
middleware stack (:mod:`service.main`), so everything cross-cutting still
applies; it reads the body itself and calls the very function the FastAPI
route calls (:func:`service.routers.predict.predict_body`), so answers and
errors are the same byte for byte. Everything else, ``/predict`` before the
model is ready included, goes on to FastAPI, which also keeps documenting the
endpoint in ``/docs``. ``LPR_FAST_LANE=false`` routes ``/predict`` through
FastAPI too.

What the lane skips is the route's dependencies, so :func:`check_lane` refuses
to build an app whose ``/predict`` route depends on anything but the engine:
a concern added as a dependency there would be silently bypassed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
from fastapi.routing import APIRoute
from starlette.datastructures import State
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.dependencies import get_engine
from service.errors import APIError, error_body
from service.routers.predict import JSON, predict_body

logger = logging.getLogger("service")

PATH = "/predict"


def check_lane(routes: Iterable[BaseRoute]) -> None:
    """Fail app creation if the lane would skip a dependency of the route it stands in for."""
    routes = [r for r in routes if isinstance(r, APIRoute) and r.path == PATH and "POST" in r.methods]
    if len(routes) != 1:
        raise RuntimeError(f"the fast lane stands in for one POST {PATH} route; found {len(routes)}")
    calls = [dependency.call for dependency in routes[0].dependant.dependencies]
    if calls != [get_engine]:
        raise RuntimeError(
            f"POST {PATH} depends on {calls}, which the fast lane would skip: make the concern an ASGI "
            "middleware (service.main) or set LPR_FAST_LANE=false"
        )


class _ClientGone(Exception):
    pass


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the body-limit middleware has already bounded it)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FastLane:
    """Serves ``POST /predict`` itself once the model is ready; passes everything else on."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.state.engine if scope["type"] == "http" else None
        if engine is None or scope["path"] != PATH or scope["method"] != "POST" or not engine.ready:
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        try:
            body = await read_body(receive)
        except _ClientGone:
            return
        try:
            answer = await predict_body(engine, body, content_type)
        except APIError as exc:
            await _respond(send, exc.status, orjson.dumps(error_body(exc.code, exc.message)))
            return
        except Exception:  # a bug must still answer JSON, as FastAPI's last-resort handler does
            logger.exception("unhandled error on POST %s", PATH)
            message = "the service failed to handle this request; it has been logged"
            await _respond(send, 500, orjson.dumps(error_body("internal_error", message)))
            return
        await _respond(send, 200, answer)
