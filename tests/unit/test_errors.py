"""gRPC status -> HTTP answer, for every grpc.StatusCode: grpc-gateway's table, the OpenAI
error type and code, and the retry headers the OpenAI SDKs read."""

from __future__ import annotations

import grpc
import pytest

from gateway.errors import GRPC_TO_HTTP, BackendError

# code: (HTTP status, OpenAI type, OpenAI code, retry headers)
TABLE: dict[grpc.StatusCode, tuple[int, str, str | None, dict[str, str]]] = {
    grpc.StatusCode.OK: (200, "server_error", None, {}),
    grpc.StatusCode.CANCELLED: (499, "invalid_request_error", None, {}),
    grpc.StatusCode.UNKNOWN: (500, "server_error", "server_error", {"x-should-retry": "false"}),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error", None, {}),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "server_error", "timeout", {"retry-after": "1"}),
    grpc.StatusCode.NOT_FOUND: (404, "invalid_request_error", "model_not_found", {}),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error", None, {}),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error", None, {}),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (
        429,
        "rate_limit_exceeded",
        "rate_limit_exceeded",
        {"retry-after": "1"},
    ),
    grpc.StatusCode.FAILED_PRECONDITION: (400, "invalid_request_error", None, {}),
    grpc.StatusCode.ABORTED: (409, "invalid_request_error", None, {}),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error", None, {}),
    grpc.StatusCode.UNIMPLEMENTED: (
        501,
        "invalid_request_error",
        None,
        {"x-should-retry": "false"},
    ),
    grpc.StatusCode.INTERNAL: (500, "server_error", "server_error", {"x-should-retry": "false"}),
    grpc.StatusCode.UNAVAILABLE: (503, "server_error", "service_unavailable", {"retry-after": "1"}),
    grpc.StatusCode.DATA_LOSS: (500, "server_error", "server_error", {"x-should-retry": "false"}),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error", None, {}),
}


def test_the_table_covers_every_status_code() -> None:
    assert set(TABLE) == set(grpc.StatusCode)
    assert set(GRPC_TO_HTTP) == {code.name for code in grpc.StatusCode}


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_backend_error(code: grpc.StatusCode) -> None:
    status, kind, error_code, headers = TABLE[code]
    error = BackendError(code.name, "the backend's words")
    assert (error.status, error.type, error.code, error.headers) == (
        status,
        kind,
        error_code,
        headers,
    )
    assert error.body() == {
        "error": {
            "message": "the backend's words",
            "type": kind,
            "param": "model" if code is grpc.StatusCode.NOT_FOUND else None,
            "code": error_code,
        }
    }


def test_an_unknown_code_is_a_500() -> None:
    assert BackendError("NOT_A_CODE", "").status == 500
