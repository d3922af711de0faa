"""``python -m service``: the README's (and ``make serve``'s) way to run the server."""

from __future__ import annotations

import logging

import uvicorn

from service.config import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
    }
    if settings.workers > 1:
        # Several processes need an import string; each builds its app from the same environment.
        uvicorn.run("service.main:create_app", factory=True, workers=settings.workers, **options)
    else:
        from service.main import create_app

        uvicorn.run(create_app(settings), **options)


if __name__ == "__main__":
    main()
