"""Every failure the SDK raises: one tree, httpx style, built in one place per transport.

    RunInfraError                      message, type, code, param, status, request_id,
    ├── APIConnectionError             client_request_id, retryable, retry_after
    │   └── APITimeoutError
    ├── APIStatusError                 an HTTP error answer (or the gRPC status it maps to)
    │   ├── BadRequestError 400 · AuthenticationError 401 · PermissionDeniedError 403
    │   ├── NotFoundError 404 · RequestTimeoutError 408 · ConflictError 409
    │   ├── PayloadTooLargeError 413 · UnsupportedMediaTypeError 415
    │   ├── UnprocessableEntityError 422 · RateLimitError 429
    │   └── InternalServerError 500 · ServiceUnavailableError 503 · GatewayTimeoutError 504
    └── StreamError                    a failure after a stream started; partial_text

`request_id` is the gateway's `x-request-id` (None when no answer came back);
`client_request_id` is the id the SDK sent (`X-Client-Request-Id`), which the gateway logs
even for a request whose answer never arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

# Statuses whose failure is transient: the same call may succeed later.
TRANSIENT_STATUSES = frozenset({408, 409, 429})


class RunInfraError(Exception):
    """The base of every SDK error."""

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.status = status
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        ids = [f"status {self.status}"] if self.status is not None else []
        ids += [f"{k}={v}" for k, v in self._ids() if v is not None]
        return f"{self.message} ({', '.join(ids)})" if ids else self.message

    def _ids(self) -> list[tuple[str, str | None]]:
        return [("request_id", self.request_id), ("client_request_id", self.client_request_id)]


class APIConnectionError(RunInfraError):
    """No answer: the connection failed or broke. `request_sent` is False when the
    connection never opened, so the server provably saw nothing."""

    def __init__(self, message: str, *, request_sent: bool, **kwargs: Any) -> None:
        super().__init__(message, retryable=True, **kwargs)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The call's timeout passed before an answer."""


class APIStatusError(RunInfraError):
    """The server answered an error status."""


class BadRequestError(APIStatusError):
    """400: the request is malformed or asks for something unsupported (see `param`)."""


class AuthenticationError(APIStatusError):
    """401: a missing or wrong API key."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404: an unknown model or resource."""


class RequestTimeoutError(APIStatusError):
    """408."""


class ConflictError(APIStatusError):
    """409: the first request with this idempotency key is still running."""


class PayloadTooLargeError(APIStatusError):
    """413: the body is over the gateway's limit."""


class UnsupportedMediaTypeError(APIStatusError):
    """415."""


class UnprocessableEntityError(APIStatusError):
    """422: the idempotency key was used with another request body."""


class RateLimitError(APIStatusError):
    """429: see `retry_after`."""


class InternalServerError(APIStatusError):
    """500 (and other 5xx without a class of their own)."""


class ServiceUnavailableError(APIStatusError):
    """503: the backend is unavailable."""


class GatewayTimeoutError(APIStatusError):
    """504: the backend call passed its deadline."""


class StreamError(RunInfraError):
    """The stream failed after it started (`response.failed`, a chat `error` frame, or a
    broken connection): `partial_text` is the text received before. Never retried."""

    def __init__(self, message: str, *, partial_text: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial_text = partial_text


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def transient(status: int, should_retry: str | None = None) -> bool:
    """Whether a failure with this status may succeed when repeated; the server's
    `x-should-retry` header, when present, decides."""
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return status in TRANSIENT_STATUSES or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """`retry-after` in seconds (a number or an HTTP date), None if absent or malformed."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_fields(body: object) -> dict[str, Any]:
    """message, type, code and param from an OpenAI error body (`{"error": {...}}`)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return {}
    return {k: error.get(k) for k in ("message", "type", "code", "param") if error.get(k)}


def error_class(status: int) -> type[APIStatusError]:
    """The class of an error answer with this HTTP status."""
    return _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIStatusError)


def status_error(
    status: int,
    body: object,
    headers: Mapping[str, str],
    *,
    request_id: str | None,
    client_request_id: str | None,
) -> APIStatusError:
    """The typed error for an HTTP error answer."""
    fields = error_fields(body)
    message = str(fields.pop("message", None) or f"HTTP {status}")
    return error_class(status)(
        message,
        status=status,
        request_id=request_id,
        client_request_id=client_request_id,
        retryable=transient(status, headers.get("x-should-retry")),
        retry_after=parse_retry_after(headers.get("retry-after")),
        **{k: str(v) for k, v in fields.items()},
    )
