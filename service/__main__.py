"""``python -m service``: the README's (and ``make serve``'s) way to run the server."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

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
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": settings.graceful_timeout,
    }
    if settings.workers > 1:
        # Several processes need an import string; each builds its app from the same environment.
        uvicorn.run("service.main:create_app", factory=True, workers=settings.workers, **options)
    else:
        from service.main import create_app

        uvicorn.run(create_app(settings), **options)


if __name__ == "__main__":
    main()
