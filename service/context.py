"""What the current request is, for code that has no request object: its id and its protocol.

Set by :class:`service.request_context.RequestContextMiddleware` (outermost in
the stack) for the whole request, so every error body, wherever it is built
(a route, an exception handler, the body limit, the fast lane, auth), carries
the request id and takes the shape the path's protocol expects.
"""

from __future__ import annotations

from contextvars import ContextVar

#: The request's ``X-Request-Id`` (the client's, or one generated for it).
request_id: ContextVar[str | None] = ContextVar("lpr_request_id", default=None)

#: True on the Open Inference Protocol routes (``/v2``), whose errors are ``{"error": "<message>"}``.
v2_protocol: ContextVar[bool] = ContextVar("lpr_v2_protocol", default=False)
