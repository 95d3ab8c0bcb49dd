"""The gateway's edge: one pure ASGI middleware for request ids, the access log and request
metrics, API-key auth, and the in-flight cap (a slot taken once the body is in), in that order.

One middleware rather than three: each ASGI layer keeps a coroutine frame alive for the
whole of a stream (about 1 KB each with 1,000 open streams) and costs a call per request.
Pure ASGI (not BaseHTTPMiddleware), so streamed responses pass through untouched.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import ApiKeys, tenant_of
from gateway.errors import GatewayError, InvalidRequest, internal_error
from gateway.http import error_response
from gateway.ids import new_id
from gateway.inflight import InFlight, Slot
from gateway.metrics import Metrics

log = logging.getLogger("gateway")

# Paths served without an API key: probes and scrapes.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


# X-Client-Request-Id as OpenAI takes it: ASCII (what HTTP allows of it in a header value),
# at most 512 characters.
_CLIENT_ID = re.compile(r"[\t\x20-\x7e]{0,512}")


def _bad_client_id() -> GatewayError:
    return InvalidRequest(
        "X-Client-Request-Id must be at most 512 ASCII characters.",
        param="X-Client-Request-Id",
        code="invalid_value",
    )


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
    then the API key is checked (401). API requests get a `Slot` of the in-flight cap in
    `state["slot"]`: taken here for requests without a body, by the endpoint once the body
    is read for the others (429 when the cap or the tenant's share is full)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, keys: ApiKeys, cap: InFlight) -> None:
        self.app = app
        self.metrics = metrics
        self.keys = keys
        self.cap = cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = new_id("req")
        state["started"] = started = time.monotonic()
        client_id = _header(scope, b"x-client-request-id")
        bad_client_id = client_id is not None and not _CLIENT_ID.fullmatch(client_id)
        if bad_client_id:
            client_id = None  # neither echoed nor logged
        status, status_sent = 500, False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                # Read at send time: a replayed idempotent response restores the original id.
                extra = [(b"x-request-id", state["request_id"].encode())]
                if client_id is not None:
                    extra.append((b"x-client-request-id", client_id.encode("latin-1")))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            if bad_client_id:
                await error_response(_bad_client_id())(scope, receive, send_with_ids)
            else:
                await self._admit(scope, receive, send_with_ids)
        except Exception:
            # A bug: answered here, so that even this answer carries the request id.
            log.exception("unhandled error", extra={"fields": {"request_id": state["request_id"]}})
            if status_sent:
                raise
            await error_response(internal_error())(scope, receive, send_with_ids)
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
        slot = scope["state"]["slot"] = Slot(self.cap, scope["state"]["tenant"])
        try:
            if scope["method"] != "POST":
                slot.take()
        except GatewayError as error:
            await error_response(error)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slot.give()
