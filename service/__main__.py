"""``ser-serve`` / ``python -m service``: run the API with uvicorn, settings from ``SER_*``."""

from __future__ import annotations

import argparse
import logging
import logging.config

import uvicorn

from service.logs import logging_config
from service.settings import Settings


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="ser-serve", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=settings.workers)
    args = parser.parse_args(argv)
    config = logging_config(settings.log_level, json_logs=settings.json_logs)
    logging.config.dictConfig(config)
    uvicorn.run(
        "service.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        log_config=config,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
