"""The sampling surface model servers serve (stop, seed, penalties, logit bias, logprobs),
validated with OpenAI's limits. Each helper checks one field and returns its value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.translate import fields as f
from runinfra.contract import (
    LOGIT_BIAS_LIMIT,
    MAX_STOP_SEQUENCES,
    MAX_TOP_LOGPROBS,
    PENALTY_LIMIT,
)

MAX_CHOICES = 8  # n: concurrent backend calls per request
_INT64 = 2**63


def chat_sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields of a chat completion request, as ChatRequest keyword arguments
    (only those given)."""
    out: dict[str, Any] = {}
    if stop := stop_sequences(body.get("stop")):
        out["stop"] = stop
    if body.get("seed") is not None:
        out["seed"] = f.integer(body["seed"], "seed", -_INT64, _INT64 - 1)
    for name in ("frequency_penalty", "presence_penalty"):
        if body.get(name) is not None:
            out[name] = f.number(body[name], name, -PENALTY_LIMIT, PENALTY_LIMIT)
    if bias := logit_bias(body.get("logit_bias")):
        out["logit_bias"] = bias
    logprobs = body.get("logprobs") is not None and f.boolean(body["logprobs"], "logprobs")
    top = top_logprobs(body.get("top_logprobs"))
    if top and not logprobs:
        raise f.invalid_value("top_logprobs", "it needs logprobs: true.")
    if logprobs:
        out["logprobs"] = True
    if top:
        out["top_logprobs"] = top
    return out


def stop_sequences(value: object) -> list[str]:
    """`stop`: a string or a list of at most 4 non-empty strings."""
    if value is None:
        return []
    if isinstance(value, str):
        stops = [value]
    else:
        items = f.array(value, "stop")
        if len(items) > MAX_STOP_SEQUENCES:
            raise f.invalid_value(
                "stop", f"at most {MAX_STOP_SEQUENCES} stop sequences, got {len(items)}."
            )
        stops = [f.string(s, f"stop[{i}]") for i, s in enumerate(items)]
    if "" in stops:
        raise f.invalid_value("stop", "a stop sequence cannot be empty.")
    return stops


def logit_bias(value: object) -> dict[int, int]:
    """`logit_bias`: token ids (decimal strings) -> integers from -100 to 100."""
    if value is None:
        return {}
    out: dict[int, int] = {}
    for key, bias in f.obj(value, "logit_bias").items():
        if not (key.isascii() and key.isdigit() and len(key) <= 10) or int(key) >= 2**31:
            raise f.invalid_value("logit_bias", f"keys are token ids (integers), got {key[:24]!r}.")
        out[int(key)] = f.integer(bias, "logit_bias", -LOGIT_BIAS_LIMIT, LOGIT_BIAS_LIMIT)
    return out


def top_logprobs(value: object) -> int:
    """`top_logprobs`: 0 to 20 alternatives per token."""
    return 0 if value is None else f.integer(value, "top_logprobs", 0, MAX_TOP_LOGPROBS)


def choices(value: object) -> int:
    """`n`: 1 to 8 choices, each its own backend call."""
    return 1 if value is None else f.integer(value, "n", 1, MAX_CHOICES)
