"""The gateway's errors, and the one place they become OpenAI error bodies.

Every error answers `{"error": {"message", "type", "param", "code"}}` with
`code` a string or null. gRPC status codes map to HTTP statuses as grpc-gateway
maps them (runtime/errors.go).
"""

from __future__ import annotations

from typing import Any

from runinfra.contract import GRPC_TO_HTTP

# HTTP status -> OpenAI error type.
_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    499: "invalid_request_error",
    501: "invalid_request_error",
}

# gRPC code name -> OpenAI error code, where one fits better than null.
_CODE_BY_GRPC: dict[str, str] = {
    "NOT_FOUND": "model_not_found",
    "RESOURCE_EXHAUSTED": "rate_limit_exceeded",
    "UNAVAILABLE": "service_unavailable",
    "DEADLINE_EXCEEDED": "timeout",
    "INTERNAL": "server_error",
    "UNKNOWN": "server_error",
    "DATA_LOSS": "server_error",
}


# Transient backend states: clients should retry, after a pause.
_TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})


def _retry_headers(grpc_code: str, status: int) -> dict[str, str]:
    """retry-after on transient failures; `x-should-retry: false` (read by the OpenAI SDKs)
    on other server errors, so a deterministic failure is not repeated."""
    if grpc_code in _TRANSIENT_GRPC:
        return {"retry-after": "1"}
    return {"x-should-retry": "false"} if status >= 500 else {}


class GatewayError(Exception):
    """An error answered to the client as an OpenAI error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 500,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error envelope for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    """The request is malformed or asks for something this gateway cannot do (400)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, status=400, param=param, code=code)


class NotFound(GatewayError):
    """The named resource does not exist (404)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, status=404, param=param, code=code)


class BackendError(GatewayError):
    """The backend answered a gRPC error status."""

    def __init__(self, grpc_code: str, details: str) -> None:
        status = GRPC_TO_HTTP.get(grpc_code, 500)
        headers = _retry_headers(grpc_code, status)
        super().__init__(
            details or f"backend error: {grpc_code}",
            status=status,
            code=_CODE_BY_GRPC.get(grpc_code),
            param="model" if grpc_code == "NOT_FOUND" else None,
            headers=headers,
        )
        self.grpc_code = grpc_code


def internal_error() -> GatewayError:
    """The error answered for a bug: no details leak to the client."""
    return GatewayError(
        "The server had an error while processing your request.", code="server_error"
    )
