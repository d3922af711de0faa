"""Requests per second per API key (or per client address when keys are off).

A token bucket in its GCRA form: per caller one number, the time at which its
bucket would be full again. A request is let through while that time is at
most ``burst / rate`` seconds away, and pushes it ``1 / rate`` further; a
batch, once its files are counted, pushes it by one more per extra file (the
route records the count on the scope with :func:`charge`), so a batch of 64
counts as 64 requests and the caller waits its turn afterwards.

Why no library: slowapi decorates routes (the fast lane would bypass it, and
every new route would need remembering), and ``limits`` offers fixed and
moving windows without a burst, and no cost known only after the body is read.
The whole algorithm is the few lines of :meth:`RateLimiter.take`.

The limit holds per process: with ``LPR_WORKERS`` or several replicas each
counts alone, so a fleet-wide limit belongs in the ingress (see
``docs/operations.md``). Refusals are 429 with ``Retry-After``; every answer
of a limited route carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (IETF draft) and their ``X-RateLimit-*`` twins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import ProtectedPaths
from service.errors import error_response
from service.request_context import KEY_HASH

#: Where a route records how many images a request held (a batch's file count).
COST = "lpr.images"

#: Callers remembered at most; past it, those whose bucket is full again (nothing to remember) go.
MAX_CALLERS = 10_000


def charge(request: Request, images: int) -> None:
    """Record that this request held ``images`` images, for the rate limiter to count."""
    request.scope[COST] = images


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # until one more request would pass (0 when allowed)


class RateLimiter:
    """GCRA buckets by caller; event-loop only, so no lock."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.interval = 1.0 / rate
        self.horizon = burst * self.interval  # how far ahead of now a full-again time may be
        self._full_at: dict[str, float] = {}

    def take(self, caller: str) -> Decision:
        now = self.clock()
        full_at = max(self._full_at.get(caller, now), now)
        after = full_at + self.interval
        if after - now > self.horizon:
            wait = after - now - self.horizon
            return Decision(False, 0, full_at - now, wait)
        self._remember(caller, after, now)
        return Decision(True, int((self.horizon - (after - now)) / self.interval), after - now, 0.0)

    def add(self, caller: str, requests: int) -> None:
        """Count ``requests`` more for a request already let through (the rest of a batch)."""
        now = self.clock()
        self._remember(caller, max(self._full_at.get(caller, now), now) + requests * self.interval, now)

    def _remember(self, caller: str, full_at: float, now: float) -> None:
        if len(self._full_at) >= MAX_CALLERS and caller not in self._full_at:
            self._full_at = {c: t for c, t in self._full_at.items() if t > now}
        self._full_at[caller] = full_at


def headers(limiter: RateLimiter, decision: Decision) -> list[tuple[bytes, bytes]]:
    limit = str(limiter.burst).encode()
    remaining = str(decision.remaining).encode()
    reset = str(math.ceil(decision.reset_s)).encode()
    return [
        (b"ratelimit-limit", limit),
        (b"ratelimit-remaining", remaining),
        (b"ratelimit-reset", reset),
        (b"x-ratelimit-limit", limit),
        (b"x-ratelimit-remaining", remaining),
        (b"x-ratelimit-reset", reset),
    ]


class RateLimitMiddleware:
    """Applies :class:`RateLimiter` to the routes that need a key."""

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, protected: ProtectedPaths) -> None:
        self.app = app
        self.limiter = RateLimiter(rate, burst)
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        caller = scope.get(KEY_HASH) or (scope.get("client") or ("unknown", 0))[0]
        decision = self.limiter.take(caller)
        extra = headers(self.limiter, decision)
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after_s))
            response = error_response(
                "rate_limited",
                f"over the limit of {self.limiter.rate:g} requests/s (burst {self.limiter.burst}); "
                f"retry in {retry} s",
                429,
            )
            response.headers["retry-after"] = str(retry)
            response.headers.update({k.decode(): v.decode() for k, v in extra})
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            images = scope.get(COST, 1)
            if images > 1:
                self.limiter.add(caller, images - 1)
