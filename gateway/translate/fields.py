"""Typed reads of request fields: each raises InvalidRequest naming the param."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.errors import InvalidRequest

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _got(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_got(value)} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid value for '{param}': {message}", param=param, code="invalid_value"
    )


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def unknown(param: str) -> InvalidRequest:
    return InvalidRequest(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def obj(value: object, param: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def array(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    return value


def string(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    return value


def boolean(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid_type(param, "a boolean", value)
    return value


def number(value: object, param: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(param, "a number", value)
    if not lo <= value <= hi:
        raise invalid_value(param, f"expected a number between {lo:g} and {hi:g}, got {value!r}.")
    return float(value)


def integer(value: object, param: str, lo: int, hi: int = 2**31 - 1) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value)
    if not lo <= value <= hi:
        raise invalid_value(param, f"expected an integer between {lo} and {hi}, got {value}.")
    return value


def choice(value: object, param: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise invalid_value(param, f"expected one of {options}, got {value!r}.")
    return value


def required(body: Mapping[str, Any], key: str, param: str) -> Any:
    if body.get(key) is None:
        raise missing(param)
    return body[key]


def check_keys(item: Mapping[str, Any], allowed: frozenset[str], param: str) -> None:
    """Reject keys outside `allowed`, as OpenAI does."""
    for key in item:
        if key not in allowed:
            raise unknown(f"{param}.{key}" if param else key)


# A field accepted only with a value that asks for nothing: (harmless?, what to do instead).
Rejection = tuple[Callable[[object], bool], str]


def null_or(*ok: object) -> Callable[[object], bool]:
    """None, or one of `ok` with the same JSON type (so `true` is not `1`)."""
    return lambda v: v is None or any(v == o and type(v) is type(o) for o in ok)


def empty(v: object) -> bool:
    return v is None or v == [] or v == {}


def check_fields(
    body: Mapping[str, Any], known: frozenset[str], rejected: Mapping[str, Rejection]
) -> None:
    """Unknown fields, and rejected fields set to a real value, answer 400 naming them."""
    for key, value in body.items():
        if key not in known:
            raise unknown(key)
        if key in rejected and not rejected[key][0](value):
            raise unsupported(key, f"'{key}' is not supported with this value. {rejected[key][1]}")


# Accepted on both endpoints and not forwarded: identifiers and cache hints that only mean
# something to OpenAI's own infrastructure (field -> why it is ignored).
OPENAI_HINTS: dict[str, str] = {
    "user": "end-user id for OpenAI's abuse monitoring; nothing to forward it to",
    "safety_identifier": "end-user id for OpenAI's abuse monitoring; nothing to forward it to",
    "prompt_cache_key": "OpenAI prompt-cache routing hint; the backend caches on its own",
    "prompt_cache_retention": "OpenAI prompt-cache policy; the backend caches on its own",
    "prompt_cache_options": "OpenAI prompt-cache policy; the backend caches on its own",
}


# The OpenAI hints above that are strings, and their longest accepted value.
_HINT_LENGTHS = {"user": 512, "safety_identifier": 64, "prompt_cache_key": 512}


def check_hints(body: Mapping[str, Any]) -> None:
    """Ignored is not unchecked: the string hints must be strings of a bounded length."""
    for key, longest in _HINT_LENGTHS.items():
        value = body.get(key)
        if value is not None and len(string(value, key)) > longest:
            raise invalid_value(key, f"at most {longest} characters are allowed.")
