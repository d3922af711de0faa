"""``python -m service``: the README's (and ``make serve``'s) way to run the server."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from service import logs
from service.config import Settings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM is how an orchestrator asks for a normal stop, so it ends the process with status 0.

    uvicorn catches SIGTERM itself, stops accepting connections, lets requests in
    flight finish (up to ``LPR_GRACEFUL_TIMEOUT`` seconds), runs the app's shutdown,
    then restores this handler and raises the signal again. Without it the default
    action would kill the process and report status -15 (143 in a container)
    after an orderly drain, which supervisors count as a crash.
    """
    raise SystemExit(0)


def main() -> None:
    settings = Settings()
    signal.signal(signal.SIGTERM, _exit_cleanly)
    logs.configure(settings.log_level, settings.log_format)
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # Our handler for everything (service.logs); the access line is service.request_context's.
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": settings.graceful_timeout,
    }
    if settings.workers > 1:
        # Several processes need an import string; each builds its app from the same environment.
        uvicorn.run("service.__main__:worker_app", factory=True, workers=settings.workers, **options)
    else:
        from service.main import create_app

        uvicorn.run(create_app(settings), **options)


def worker_app() -> FastAPI:
    """One worker process's app (``LPR_WORKERS`` > 1): a spawned process sets up its own logging."""
    from service.main import create_app

    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


if __name__ == "__main__":
    main()
