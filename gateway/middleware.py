"""The gateway's edge: one pure ASGI middleware for request ids, the access log and request
metrics, API-key auth, and the in-flight cap, in that order.

One middleware rather than three: each ASGI layer keeps a coroutine frame alive for the
whole of a stream (about 1 KB each with 1,000 open streams) and costs a call per request.
Pure ASGI (not BaseHTTPMiddleware), so streamed responses pass through untouched.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import ApiKeys, tenant_of
from gateway.errors import GatewayError
from gateway.http import error_response
from gateway.ids import new_id
from gateway.metrics import Metrics

log = logging.getLogger("gateway")

# Paths served without an API key: probes and scrapes.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def authenticate(scope: Scope, keys: ApiKeys) -> GatewayError | None:
    """`Authorization: Bearer <key>` against the configured keys; sets the request's tenant."""
    state = scope["state"]
    if not keys.configured or scope["path"] in PUBLIC_PATHS:
        state["tenant"] = "anonymous"
        return None
    header = _header(scope, b"authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not keys.check(key.strip()):
        message = (
            "Incorrect API key provided."
            if header
            else "Missing API key: send Authorization: Bearer <key>."
        )
        return GatewayError(
            message, status=401, code="invalid_api_key", type="invalid_request_error"
        )
    state["tenant"] = tenant_of(key.strip())
    return None


class Edge:
    """Every request gets an id (`req_…`), echoed with the client's own id on every response
    (errors included), one structured access-log line (no bodies, no keys) and its metrics;
    then the API key is checked (401), then the in-flight cap (429: at most `limit` API
    requests at once, a stream counting until it ends)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, keys: ApiKeys, limit: int) -> None:
        self.app = app
        self.metrics = metrics
        self.keys = keys
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = new_id("req")
        state["started"] = started = time.monotonic()
        client_id = _header(scope, b"x-client-request-id")
        status = 500

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Read at send time: a replayed idempotent response restores the original id.
                extra = [(b"x-request-id", state["request_id"].encode())]
                if client_id is not None:
                    extra.append((b"x-client-request-id", client_id.encode("latin-1")))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self._admit(scope, receive, send_with_ids)
        finally:
            elapsed = time.monotonic() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.request_done(route, status, elapsed)
            fields = {
                "request_id": state["request_id"],
                "client_request_id": client_id,
                "tenant": state.get("tenant"),
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round(elapsed * 1000, 1),
            }
            log.info("request", extra={"fields": fields})

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        if error := authenticate(scope, self.keys):
            await error_response(error)(scope, receive, send)
            return
        if not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await error_response(self._overloaded())(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _overloaded(self) -> GatewayError:
        return GatewayError(
            f"Too many requests in flight (limit {self.limit}); retry shortly.",
            status=429,
            code="rate_limit_exceeded",
            headers={"retry-after": "1"},
        )
