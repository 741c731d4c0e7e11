"""Optional API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Keys come from ``SER_API_KEYS`` (comma-separated, plain) and/or ``SER_API_KEYS_FILE`` (one
SHA-256 hex digest per line, ``#`` comments; ``python -m service.api.auth KEY`` prints a key's
digest). Only digests are kept in memory, compared in constant time. With no keys configured,
auth is off (local use).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from starlette.requests import HTTPConnection

from service.errors import ServiceError


class UnauthorizedError(ServiceError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(ServiceError):
    status_code = 403
    code = "forbidden"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored in a keys file: ``python -m service.api.auth KEY``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    digests: tuple[bytes, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    @classmethod
    def from_sources(cls, *, keys: str = "", keys_file: Path | None = None) -> ApiKeys:
        digests = [bytes.fromhex(hash_key(k.strip())) for k in keys.split(",") if k.strip()]
        if keys_file is not None:
            for number, line in enumerate(keys_file.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                try:
                    digest = bytes.fromhex(line)
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ValueError(f"{keys_file}:{number}: not a SHA-256 hex digest")
                digests.append(digest)
        return cls(tuple(digests))

    def accepts(self, presented: str) -> bool:
        candidate = hashlib.sha256(presented.encode("utf-8")).digest()
        # Compare against every digest, without short-circuit, so timing says nothing.
        matches = [hmac.compare_digest(candidate, digest) for digest in self.digests]
        return any(matches)


def presented_key(connection: HTTPConnection) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key`` (HTTP requests and WebSockets)."""
    header = connection.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return connection.headers.get("x-api-key")


def check_api_key(keys: ApiKeys, key: str | None) -> None:
    """Raise :class:`UnauthorizedError` without a key, :class:`ForbiddenError` with a wrong one.

    Nothing when auth is off. Shared by the HTTP routes and the WebSocket stream.
    """
    if not keys.enabled:
        return
    if not key:
        raise UnauthorizedError(
            "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not keys.accepts(key):
        raise ForbiddenError("The API key is not valid.")


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 without a key, 403 with a wrong one, nothing when auth is off.

    ``async`` although it never awaits: it only compares digests, and a plain ``def``
    dependency would cost every request a hop through the threadpool.
    """
    keys: ApiKeys = request.app.state.api_keys
    check_api_key(keys, presented_key(request))


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        print(hash_key(arg))  # noqa: T201 - a CLI
