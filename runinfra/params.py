"""The keyword arguments of every call, declared once as TypedDicts: mypy checks them at the
call site, and `check()` checks the same declarations at run time (a wrong type raises
TypeError naming the argument, before anything is sent). A new request field is one line in
the TypedDict of its endpoint."""

from __future__ import annotations

import enum
import re
import types
import uuid
from collections.abc import Mapping
from typing import Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints


class Auto(enum.Enum):
    """`idempotency_key=runinfra.AUTO`: one fresh key per logical call, reused by its retries."""

    AUTO = "auto"


AUTO = Auto.AUTO


class CallOptions(TypedDict, total=False):
    """How one call is made (not sent in the body)."""

    idempotency_key: str | Auto  # makes a non-streaming call replay-safe, so it is retried
    request_id: str  # X-Client-Request-Id of this logical call (default: a fresh UUID)
    max_retries: int  # default: the client's
    timeout: float  # seconds, per attempt; default: the client's


class ResponseFields(TypedDict, total=False):
    """POST /v1/responses fields besides model, input and stream (README "Request fields")."""

    instructions: str
    max_output_tokens: int
    temperature: float
    top_p: float
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    text: dict[str, Any]
    response_format: dict[str, Any]
    metadata: dict[str, str]
    reasoning: dict[str, Any]
    include: list[str]
    top_logprobs: int
    max_tool_calls: int
    user: str
    safety_identifier: str
    prompt_cache_key: str


class ChatFields(TypedDict, total=False):
    """POST /v1/chat/completions fields besides model, messages and stream."""

    temperature: float
    top_p: float
    max_tokens: int
    max_completion_tokens: int
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    response_format: dict[str, Any]
    stream_options: dict[str, Any]
    reasoning_effort: str
    n: int
    stop: str | list[str]
    seed: int
    frequency_penalty: float
    presence_penalty: float
    logit_bias: dict[str, int]
    logprobs: bool
    top_logprobs: int
    user: str
    safety_identifier: str
    prompt_cache_key: str


class ResponseParams(ResponseFields, CallOptions, total=False):
    """Everything `responses.create` takes as keywords."""


class ChatParams(ChatFields, CallOptions, total=False):
    """Everything `chat.completions.create` takes as keywords."""


_CALL_OPTIONS = frozenset(CallOptions.__annotations__)
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
MAX_REQUEST_ID = 512  # the gateway's cap on X-Client-Request-Id
MAX_IDEMPOTENCY_KEY = 255  # the gateway's cap on Idempotency-Key


def _accepts(hint: Any, value: object) -> bool:
    """`value` fits the annotation `hint` (containers checked one level deep)."""
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_accepts(h, value) for h in get_args(hint))
    if origin is Literal:
        return value in get_args(hint)
    if origin is not None:
        return isinstance(value, origin)
    if isinstance(value, bool) and hint in (int, float):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, hint)


def check(spec: type[Mapping[str, Any]], params: Mapping[str, object]) -> None:
    """TypeError for an unknown keyword or a value of the wrong type, naming it."""
    hints = get_type_hints(spec)
    for name, value in params.items():
        if name not in hints:
            raise TypeError(f"runinfra: unexpected keyword argument {name!r}")
        check_arg(name, value, hints[name])


def check_arg(name: str, value: object, hint: Any) -> None:
    """TypeError unless the argument `name` fits `hint`, naming both."""
    if not _accepts(hint, value):
        expected = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
        raise TypeError(f"runinfra: {name} must be {expected}, not {type(value).__name__}")


def split(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(body fields, call options) of checked keyword arguments."""
    body = {k: v for k, v in params.items() if k not in _CALL_OPTIONS}
    return body, {k: v for k, v in params.items() if k in _CALL_OPTIONS}


def header_value(name: str, value: str, limit: int) -> str:
    """ValueError unless `value` is 1..limit printable ASCII characters (a valid HTTP header
    and gRPC metadata value)."""
    if len(value) > limit or not _PRINTABLE.fullmatch(value):
        raise ValueError(f"runinfra: {name} must be 1-{limit} printable ASCII characters")
    return value


def request_id_of(value: str | None) -> str:
    """The caller's request id, checked, or a fresh UUID."""
    if value is None:
        return str(uuid.uuid4())
    return header_value("request_id", value, MAX_REQUEST_ID)


def idempotency_key_of(value: str | Auto | None) -> str | None:
    """The caller's key, checked; AUTO makes a fresh one (for one logical call)."""
    if value is None:
        return None
    if value is AUTO:
        return f"runinfra-{uuid.uuid4()}"
    assert isinstance(value, str)
    return header_value("idempotency_key", value, MAX_IDEMPOTENCY_KEY)


def positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """ValueError unless `value` > 0 (or >= 0)."""
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"runinfra: {name} must be {'>= 0' if allow_zero else '> 0'}")
    return value
