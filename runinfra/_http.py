"""The HTTP transport: one logical call -> attempts under the retry policy -> an httpx
response or a typed error. The sync and async senders share everything but the I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from runinfra import params
from runinfra._retry import retry_delay
from runinfra.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RunInfraError,
    status_error,
)
from runinfra.params import CallOptions
from runinfra.types import CallInfo

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
DEFAULT_TIMEOUT = 600.0  # the gateway's own backend deadline
DEFAULT_MAX_RETRIES = 2
USER_AGENT = "runinfra-python"


@dataclass(frozen=True, slots=True)
class Config:
    """A client's settings, checked once."""

    base_url: str
    api_key: str | None
    timeout: float
    max_retries: int

    @staticmethod
    def of(base_url: str, api_key: str | None, timeout: float, max_retries: int) -> Config:
        params.check_arg("base_url", base_url, str)
        params.check_arg("api_key", api_key, str | None)
        params.check_arg("timeout", timeout, float)
        params.check_arg("max_retries", max_retries, int)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("runinfra: base_url must start with http:// or https://")
        params.positive("timeout", timeout)
        params.positive("max_retries", max_retries, allow_zero=True)
        return Config(base_url.rstrip("/"), api_key, timeout, max_retries)

    def headers(self) -> dict[str, str]:
        auth = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {"user-agent": USER_AGENT, **auth}


@dataclass(frozen=True, slots=True)
class Call:
    """One logical call: every attempt sends the same body, client request id and key."""

    method: str
    path: str
    body: dict[str, Any] | None
    stream: bool
    client_request_id: str
    idempotency_key: str | None
    max_retries: int
    timeout: float

    @property
    def replay_safe(self) -> bool:
        """A GET, or a non-streaming POST with an idempotency key: retrying cannot run twice."""
        return self.method == "GET" or (not self.stream and self.idempotency_key is not None)

    def headers(self) -> dict[str, str]:
        key = {"idempotency-key": self.idempotency_key} if self.idempotency_key else {}
        return {"x-client-request-id": self.client_request_id, **key}

    def info(self, response: httpx.Response) -> CallInfo:
        replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
        return CallInfo(response.headers.get("x-request-id"), self.client_request_id, replayed)


def make_call(
    method: str,
    path: str,
    body: dict[str, Any] | None,
    options: Mapping[str, Any],
    config: Config,
    *,
    stream: bool = False,
) -> Call:
    """A Call from checked call options (CallOptions) and the client's defaults."""
    params.check(CallOptions, options)
    max_retries = options.get("max_retries", config.max_retries)
    timeout = options.get("timeout", config.timeout)
    return Call(
        method,
        path,
        body,
        stream,
        params.request_id_of(options.get("request_id")),
        params.idempotency_key_of(options.get("idempotency_key")),
        int(params.positive("max_retries", max_retries, allow_zero=True)),
        params.positive("timeout", timeout),
    )


def body_call(
    path: str,
    required: dict[str, tuple[Any, Any]],
    stream: bool,
    fields: type[Mapping[str, Any]],
    kwargs: Mapping[str, Any],
    config: Config,
) -> Call:
    """A POST of `required` (name -> (value, type)) and the keyword fields of `fields`."""
    for name, (value, hint) in required.items():
        params.check_arg(name, value, hint)
    params.check_arg("stream", stream, bool)
    params.check(fields, kwargs)
    body, options = params.split(kwargs)
    body = {**{k: v for k, (v, _) in required.items()}, **body, "stream": stream}
    return make_call("POST", path, body, options, config, stream=stream)


def connection_error(exc: httpx.TransportError, call: Call, url: str) -> APIConnectionError:
    """The typed error of an attempt that got no answer."""
    never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    what = "timed out" if cls is APITimeoutError else "failed"
    return cls(
        f"{call.method} {url} {what}: {exc!r}",
        request_sent=not never_sent,
        client_request_id=call.client_request_id,
    )


def answer_error(response: httpx.Response, call: Call) -> APIStatusError:
    """The typed error of an error answer (its body already read)."""
    try:
        body: object = response.json()
    except ValueError:
        body = None
    return status_error(
        response.status_code,
        body,
        response.headers,
        request_id=response.headers.get("x-request-id"),
        client_request_id=call.client_request_id,
    )


def json_of(response: httpx.Response, call: Call) -> dict[str, Any]:
    """A success body as a JSON object, or a RunInfraError naming the call."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RunInfraError(
            "the answer is not a JSON object",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
            client_request_id=call.client_request_id,
        )
    return body


class _Sender:
    def __init__(self, config: Config) -> None:
        self.config = config

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        return http.build_request(
            call.method,
            self.config.base_url + call.path,
            json=call.body,
            headers={**self.config.headers(), **call.headers()},
            timeout=httpx.Timeout(call.timeout, connect=min(call.timeout, 10.0)),
        )

    @staticmethod
    def _delay(error: RunInfraError, call: Call, attempt: int) -> float | None:
        return retry_delay(
            error, attempt=attempt, max_retries=call.max_retries, replay_safe=call.replay_safe
        )


class Sender(_Sender):
    """Sends a Call, sync; a stream's response is returned open."""

    def __init__(self, config: Config, http: httpx.Client | None) -> None:
        super().__init__(config)
        self._owned = http is None
        self.http = http or httpx.Client()

    def __del__(self) -> None:
        """A client dropped without close() closes its own connections (not a caller's)."""
        if self._owned and not self.http.is_closed:
            self.http.close()

    def send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            request = self._request(self.http, call)
            try:
                response = self.http.send(request, stream=call.stream)
            except httpx.TransportError as exc:
                error: RunInfraError = connection_error(exc, call, str(request.url))
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                error = answer_error(response, call)
            delay = self._delay(error, call, attempt)
            if delay is None:
                raise error
            time.sleep(delay)
            attempt += 1


class AsyncSender(_Sender):
    """Sends a Call, async; a stream's response is returned open."""

    def __init__(self, config: Config, http: httpx.AsyncClient | None) -> None:
        super().__init__(config)
        self.http = http or httpx.AsyncClient()

    async def send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            request = self._request(self.http, call)
            try:
                response = await self.http.send(request, stream=call.stream)
            except httpx.TransportError as exc:
                error: RunInfraError = connection_error(exc, call, str(request.url))
            else:
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
                error = answer_error(response, call)
            delay = self._delay(error, call, attempt)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            attempt += 1
