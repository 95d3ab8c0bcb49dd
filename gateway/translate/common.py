"""Request pieces shared by the Responses and Chat Completions translators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.translate import fields as f
from runinfra.chat.v1 import chat_service_pb2 as pb

DETAILS = {
    "auto": pb.IMAGE_DETAIL_AUTO,
    "low": pb.IMAGE_DETAIL_LOW,
    "high": pb.IMAGE_DETAIL_HIGH,
}
TOOL_CHOICE_MODES = {
    "auto": pb.TOOL_CHOICE_MODE_AUTO,
    "none": pb.TOOL_CHOICE_MODE_NONE,
    "required": pb.TOOL_CHOICE_MODE_REQUIRED,
}
# Reasoning effort -> the contract's; "none" (no reasoning asked for) is not forwarded, and
# OpenAI's "xhigh" and "max" are the contract's highest.
REASONING_EFFORTS = {
    "none": pb.REASONING_EFFORT_UNSPECIFIED,
    "minimal": pb.REASONING_EFFORT_MINIMAL,
    "low": pb.REASONING_EFFORT_LOW,
    "medium": pb.REASONING_EFFORT_MEDIUM,
    "high": pb.REASONING_EFFORT_HIGH,
    "xhigh": pb.REASONING_EFFORT_HIGH,
    "max": pb.REASONING_EFFORT_HIGH,
}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def text_part(text: str) -> pb.ContentPart:
    return pb.ContentPart(text=text)


def image_part(url: object, detail: object, param: str) -> pb.ContentPart:
    """An image given by an https URL or a data URL."""
    return image(url, detail, url_param=f"{param}.image_url", detail_param=f"{param}.detail")


def image(url: object, detail: object, *, url_param: str, detail_param: str) -> pb.ContentPart:
    """An image part; the params name where the URL and the detail sit in the request."""
    url = f.string(url, url_param)
    if not url.startswith(("https://", "http://", "data:image/")):
        raise f.invalid_value(
            url_param, "expected an https URL or a data URL (data:image/...;base64,...)."
        )
    level = f.choice("auto" if detail is None else detail, detail_param, tuple(DETAILS))
    return pb.ContentPart(image=pb.Image(url=url, detail=DETAILS[level]))


def reasoning_effort(value: object, param: str) -> pb.ReasoningEffort.ValueType:
    """A reasoning effort (null: the backend's default)."""
    if value is None:
        return pb.REASONING_EFFORT_UNSPECIFIED
    return REASONING_EFFORTS[f.choice(value, param, tuple(REASONING_EFFORTS))]


def model(value: object, default_model: str) -> str:
    """The requested model; "default" (or "") resolves to the configured default model."""
    name = f.string(value, "model")
    resolved = default_model if name in ("default", "") and default_model else name
    if not resolved:
        raise f.missing("model")
    return resolved


def json_text(value: object, param: str) -> str:
    """A JSON Schema object, serialized for the contract."""
    return orjson.dumps(f.obj(value, param)).decode()


def function_tool(
    name: object, description: object, parameters: object, strict: object, param: str
) -> pb.Tool:
    """One function tool; `param` names the tool's object in the request."""
    name = f.string(name, f"{param}.name")
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        raise f.invalid_value(
            f"{param}.name", "a function name is 1-64 characters of a-z, A-Z, 0-9, _ and -."
        )
    tool = pb.Tool(name=name)
    if description is not None:
        tool.description = f.string(description, f"{param}.description")
    if parameters is not None:
        tool.parameters = json_text(parameters, f"{param}.parameters")
    if strict is not None:
        tool.strict = f.boolean(strict, f"{param}.strict")
    return tool


def named_tool_choice(name: object, tools: list[pb.Tool], param: str) -> pb.ToolChoice:
    name = f.string(name, param)
    _check_tool_exists(name, tools, param)
    return pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name=name)


def allowed_tool_choice(
    mode: object, names: list[str], tools: list[pb.Tool], param: str
) -> pb.ToolChoice:
    mode = f.choice(mode, f"{param}.mode", ("auto", "required"))
    for i, name in enumerate(names):
        _check_tool_exists(name, tools, f"{param}.tools[{i}]")
    return pb.ToolChoice(mode=TOOL_CHOICE_MODES[mode], allowed_function_names=names)


def _check_tool_exists(name: str, tools: list[pb.Tool], param: str) -> None:
    if not any(t.name == name for t in tools):
        raise f.invalid_value(param, f"no function named '{name}' is among the request's tools.")


def json_schema_format(body: Mapping[str, Any], param: str) -> pb.ResponseFormat:
    """A json_schema format from its {name, schema, description, strict} object."""
    name = f.string(f.required(body, "name", f"{param}.name"), f"{param}.name")
    schema = pb.JsonSchema(name=name, schema=json_text(body.get("schema") or {}, f"{param}.schema"))
    if body.get("description") is not None:
        schema.description = f.string(body["description"], f"{param}.description")
    if body.get("strict") is not None:
        schema.strict = f.boolean(body["strict"], f"{param}.strict")
    return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=schema)


def simple_format(kind: str) -> pb.ResponseFormat:
    if kind == "json_object":
        return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    return pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_TEXT)
