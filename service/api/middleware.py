"""ASGI middleware, outermost first: request stats, load shedding, the body size limit.

- :class:`RequestStatsMiddleware` counts every HTTP answer and every WebSocket connection by
  route and status (a WebSocket's status is its close code), tags requests with an id, and
  writes the access log.
- :class:`LoadSheddingMiddleware` answers 503 before an upload is parsed when every inference
  slot is taken.
- :class:`BodySizeLimitMiddleware` answers 413 while the body streams in: it never buffers past
  the limit.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.limiter import InflightLimiter
from service.api.stats import ServiceStats
from service.errors import error_body
from service.logs import request_id_var

access_log = logging.getLogger("service.access")

#: The route label of a path no route serves (bounded label cardinality for scrapers).
OTHER = "other"


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answer 413 as soon as a request declares or sends more than ``max_bytes``.

    The check wraps ``receive`` and ``send`` instead of relying on the framework's form
    parser, which would turn the error into a generic 400 or spool the whole body first.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, on_reject: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    def _body(self) -> bytes:
        mb = self.max_bytes / (1024 * 1024)
        return json.dumps(
            {
                "error": "upload_too_large",
                "detail": f"The request body exceeds the limit of {mb:g} MB.",
            }
        ).encode()

    async def _reject(self, send: Send) -> None:
        if self.on_reject is not None:
            self.on_reject()
        body = self._body()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app made of the aborted body, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The framework may wrap our signal in its own error type; only ours is swallowed.
            if not exceeded:
                raise
        if exceeded and not started:
            await self._reject(send)


class LoadSheddingMiddleware:
    """Answer 503 before reading an upload when every inference slot is taken.

    The limiter inside the handler stays authoritative; this only spares a saturated worker
    from parsing bodies it would refuse anyway, which keeps overload answers and probes fast.
    The body is drained unparsed (up to the upload limit) so the client reads a clean 503
    instead of a connection reset in the middle of its upload.
    """

    def __init__(
        self, app: ASGIApp, *, limiter: InflightLimiter, stats: ServiceStats, max_bytes: int
    ) -> None:
        self.app, self.limiter, self.stats, self.max_bytes = app, limiter, stats, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").startswith("/predict")
            and self.limiter.full
        ):
            self.stats.record_error("overloaded")
            drained, more = 0, True
            while more and drained <= self.max_bytes:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                drained += len(message.get("body", b""))
                more = message.get("more_body", False)
            headers = {"Retry-After": "1"} | ({"Connection": "close"} if more else {})
            response = JSONResponse(
                error_body("overloaded", "The service is at capacity; retry shortly."),
                status_code=503,
                headers=headers,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class RouteLabels:
    """The route label of a request path: the path of the app's route that serves it.

    Built from the app's routes on first use (they are all added by then), so a new route is
    counted under its own name without a hand-kept list. Mounts (``/static``) count under
    their prefix; anything else under :data:`OTHER`.
    """

    def __init__(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self._routes = routes
        self._paths: frozenset[str] | None = None
        self._mounts: tuple[str, ...] = ()

    def __call__(self, path: str) -> str:
        if self._paths is None:
            # Included routers stay nested in ``app.routes``; this walks into them.
            contexts = [c for c in iter_route_contexts(self._routes()) if c.path is not None]
            self._mounts = tuple(
                c.path for c in contexts if isinstance(c.original_route, Mount) and c.path
            )
            self._paths = frozenset(c.path for c in contexts if c.path)
        if path in self._paths:
            return path
        return next((m for m in self._mounts if path.startswith(m + "/")), OTHER)


class RequestStatsMiddleware:
    """Counts every answer and stream by route and status, and tags requests with an id."""

    def __init__(self, app: ASGIApp, *, stats: ServiceStats, labels: RouteLabels) -> None:
        self.app = app
        self.stats = stats
        self.labels = labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = self.labels(path)
        request_id = next(
            (
                v.decode("latin-1")[:128]
                for k, v in scope.get("headers", ())
                if k == b"x-request-id"
            ),
            uuid.uuid4().hex,
        )
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_stats(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.stats.record_request(route, status)
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_stats)
        finally:
            access_log.info(
                "%s %s %d",
                scope.get("method", ""),
                path,
                status,
                extra={
                    "status": status,
                    "route": route,
                    "request_id": request_id,
                    "duration_ms": round(1000 * (time.perf_counter() - started), 3),
                },
            )
            request_id_var.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One count per connection, when it ends, under its close code.

        The server's close code when it closed the socket; the client's when it left first
        (1000 for a clean close, 1006 for a dropped connection); the HTTP status when the
        handshake was refused.
        """
        path = scope.get("path", "")
        route = self.labels(path)
        code = 1006  # no close frame seen either way
        closed_by_server = False
        started = time.perf_counter()

        async def watched_receive() -> Message:
            nonlocal code
            message = await receive()
            if message["type"] == "websocket.disconnect" and not closed_by_server:
                code = int(message.get("code", 1000))
            return message

        async def watched_send(message: Message) -> None:
            nonlocal code, closed_by_server
            if message["type"] == "websocket.close" and not closed_by_server:
                code, closed_by_server = int(message.get("code", 1000)), True
            elif message["type"] == "websocket.http.response.start":
                code, closed_by_server = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            self.stats.record_request(route, code)
            access_log.info(
                "WEBSOCKET %s %d",
                path,
                code,
                extra={
                    "status": code,
                    "route": route,
                    "duration_ms": round(1000 * (time.perf_counter() - started), 3),
                },
            )
