"""ChatRequest -> engine Params, and the engine's finish reasons -> the contract's. Pure."""

from __future__ import annotations

import json

from backend_local.engine import Params
from runinfra.chat.v1 import chat_service_pb2 as pb

_ROLES = {
    pb.ROLE_UNSPECIFIED: "user",
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_DEVELOPER: "system",  # open-model chat templates know only `system`
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
}
_FINISH = {
    "stop": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "tool_calls": pb.FINISH_REASON_TOOL_CALLS,
    "content_filter": pb.FINISH_REASON_CONTENT_FILTER,
}
# Any JSON object: what `json_object` asks for, as a schema for the grammar compiler.
JSON_OBJECT_SCHEMA: dict[str, object] = {"type": "object"}
# llguidance's option (top-level `x-guidance`) for compact JSON. With free whitespace, which the
# grammar allows between any two tokens, a small model can emit newlines until the token limit.
COMPACT = {"whitespace_flexible": False}


class Unsupported(ValueError):
    """The request asks for something this model cannot do (-> INVALID_ARGUMENT)."""


def finish_reason(engine_reason: str) -> pb.FinishReason.ValueType:
    """mistral.rs names stop reasons as OpenAI does; anything else ended the reply: stop."""
    return _FINISH.get(engine_reason, pb.FINISH_REASON_STOP)


def _text(message: pb.Message, model_id: str) -> str:
    parts = []
    for part in message.content:
        kind = part.WhichOneof("part")
        if kind == "image":
            raise Unsupported(f"model {model_id} does not accept images")
        if kind == "text":
            parts.append(part.text)
        elif kind == "refusal":
            parts.append(part.refusal)
    return "\n".join(parts)


def _schema(response_format: pb.ResponseFormat) -> str | None:
    """The JSON Schema text for the engine's grammar, compact JSON unless the schema says."""
    if response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        schema = dict(JSON_OBJECT_SCHEMA)
    elif response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        try:
            parsed = json.loads(response_format.json_schema.schema or "{}")
        except ValueError:
            raise Unsupported("response_format json_schema: the schema is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise Unsupported("response_format json_schema: the schema must be a JSON object")
        schema = parsed
    else:
        return None
    schema.setdefault("x-guidance", COMPACT)
    return json.dumps(schema)


def _role(message: pb.Message) -> str:
    role = _ROLES.get(message.role)
    if role is None:
        raise Unsupported(f"unknown message role {message.role}")
    return role


def params(
    request: pb.ChatRequest,
    *,
    model_id: str,
    default_max_tokens: int,
    template_has_tools: bool = False,
) -> Params:
    """The engine's view of a chat turn. Raises Unsupported for images and for tools: tool
    definitions, calls or results. A silently ignored tool would be worse than a clear 400.
    (A model whose chat template renders tools still gets the 400: the engine's Python API
    carries no tool calls or results in the history, so a tool loop could not continue.)"""
    uses_tools = bool(request.tools) or any(
        m.role == pb.ROLE_TOOL or m.tool_calls or m.tool_call_id for m in request.messages
    )
    if uses_tools:
        if template_has_tools:
            raise Unsupported(
                f"model {model_id}: backend_local does not map tool calls yet "
                "(its chat template has them; the engine's Python API cannot replay them)"
            )
        raise Unsupported(f"model {model_id} does not support tools")
    messages = tuple((_role(m), _text(m, model_id)) for m in request.messages)
    return Params(
        messages=messages,
        max_tokens=(
            request.max_output_tokens
            if request.HasField("max_output_tokens")
            else default_max_tokens
        ),
        temperature=request.temperature if request.HasField("temperature") else None,
        top_p=request.top_p if request.HasField("top_p") else None,
        json_schema=_schema(request.response_format),
    )
