"""``ser-serve`` / ``python -m service``: run the API with uvicorn, settings from ``SER_*``."""

from __future__ import annotations

import os

# Before numpy is imported here or in the workers (they inherit the environment): one request's
# matrices are small, and BLAS threads spinning against the other workers (or on a one-core
# pin) made feature extraction ~30x slower (0.7 -> 21 ms for 3 s; bench/speed.py). Parallelism
# comes from uvicorn workers.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import logging.config  # noqa: E402

import uvicorn  # noqa: E402

from service.logs import logging_config  # noqa: E402
from service.settings import Settings  # noqa: E402


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
