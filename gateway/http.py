"""HTTP helpers of the endpoints: the JSON body with its limits, JSON responses, and the one
place an error becomes an HTTP response."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError, InvalidRequest


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: GatewayError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def read_body(request: Request, max_bytes: int, timeout: float) -> bytearray:
    """The raw JSON body, read within `timeout` seconds: 415, 413 and 408 otherwise."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise GatewayError(
            f"Unsupported content type '{ctype}': send application/json.",
            status=415,
            code="unsupported_media_type",
        )
    if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise GatewayError(
            "Compressed request bodies are not supported: send the JSON uncompressed.",
            status=415,
            code="unsupported_media_type",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for piece in request.stream():
                body += piece
                if len(body) > max_bytes:
                    raise _too_large(max_bytes)
    except TimeoutError:
        raise GatewayError(
            f"The request body did not arrive within {timeout:g} seconds.",
            status=408,
            code="request_timeout",
            headers={"connection": "close"},
        ) from None
    return body  # a bytearray, not copied: it may be 32 MiB


def decode(body: bytes | bytearray) -> dict[str, Any]:
    """The body's JSON object, or 400."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return data


def _too_large(max_bytes: int) -> GatewayError:
    return GatewayError(
        f"Request body too large: the limit is {max_bytes} bytes.",
        status=413,
        code="request_too_large",
    )
