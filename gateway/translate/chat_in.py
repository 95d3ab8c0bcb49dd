"""POST /v1/chat/completions request JSON -> ChatRequest.

Every top-level field has one treatment, listed in FIELDS (and in the README's
field table): mapped onto the ChatRequest, accepted and ignored (IGNORED says
why), or rejected when set to a value that asks for something the backend
contract cannot do (REJECTED says what to do instead). Null, false and empty
values of unsupported features ask for nothing and are accepted. Unknown fields
are rejected, as OpenAI rejects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.translate import common, sampling
from gateway.translate import fields as f
from runinfra.chat.v1 import chat_service_pb2 as pb

ROLES = {
    "system": pb.ROLE_SYSTEM,
    "developer": pb.ROLE_DEVELOPER,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}


def _text_only(v: object) -> bool:
    return f.empty(v) or v == ["text"]


# Fields accepted only with a value that asks for nothing: (harmless?, what to do instead).
REJECTED: dict[str, f.Rejection] = {
    "audio": (f.null_or(), "Audio output is not available; leave 'audio' out."),
    "modalities": (_text_only, "Only text output is available; send modalities: ['text']."),
    "prediction": (f.null_or(), "Predicted outputs are not available; leave 'prediction' out."),
    "web_search_options": (
        f.null_or(),
        "This gateway runs no hosted tools; declare a function tool that searches the web "
        "and execute it client-side.",
    ),
    "functions": (f.empty, "'functions' is deprecated; declare them in 'tools' instead."),
    "function_call": (f.null_or(), "'function_call' is deprecated; use 'tool_choice' instead."),
    "verbosity": (
        f.null_or("medium"),
        "Verbosity cannot be honoured by this backend; leave 'verbosity' out.",
    ),
    "moderation": (f.null_or(), "Moderation is not available on this gateway; leave it out."),
    "service_tier": (
        f.null_or("auto", "default"),
        "Only the 'auto' and 'default' service tiers exist here.",
    ),
    "store": (
        f.null_or(False),
        "This gateway is stateless and stores nothing; set store to false (or leave it out).",
    ),
}
# Accepted and not forwarded: identifiers and hints for OpenAI's own infrastructure.
IGNORED: dict[str, str] = {
    **f.OPENAI_HINTS,
    "metadata": "tags stored completions; nothing is stored (store must be false)",
}
# stream_options.include_obfuscation is accepted and not applied: frames carry no padding.
MAPPED = frozenset(
    {
        "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens",
        "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
        "response_format", "reasoning_effort", "n", "stop", "seed", "frequency_penalty",
        "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
    }
)  # fmt: skip
FIELDS = MAPPED | REJECTED.keys() | IGNORED.keys()


@dataclass(frozen=True, slots=True)
class ChatCompletionRequest:
    """A validated /v1/chat/completions request."""

    chat: pb.ChatRequest
    stream: bool
    include_usage: bool  # stream_options.include_usage: end the stream with a usage chunk
    n: int = 1  # choices: concurrent backend calls (gateway.fanout)


def parse(body: Mapping[str, Any], default_model: str) -> ChatCompletionRequest:
    """Validate a request body and translate it; raises InvalidRequest naming the param.
    Each helper validates one concern and returns values; only this function builds."""
    f.check_fields(body, FIELDS, REJECTED)
    tools = _tools(body.get("tools"))
    tool_choice = body.get("tool_choice")
    response_format = body.get("response_format")
    stream = body.get("stream") is not None and f.boolean(body["stream"], "stream")
    chat = pb.ChatRequest(
        model=common.model(f.required(body, "model", "model"), default_model),
        messages=_messages(f.required(body, "messages", "messages")),
        tools=tools,
        tool_choice=None if tool_choice is None else _tool_choice(tool_choice, tools),
        response_format=None if response_format is None else _response_format(response_format),
        buffered=not stream,  # only the whole reply is used: the backend may send fewer chunks
        reasoning_effort=common.reasoning_effort(body.get("reasoning_effort"), "reasoning_effort"),
        **_sampling(body),
    )
    include_usage = _include_usage(body.get("stream_options"), stream)
    return ChatCompletionRequest(chat, stream, include_usage, sampling.choices(body.get("n")))


def _sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields given, as ChatRequest keyword arguments."""
    out: dict[str, Any] = {}
    if body.get("temperature") is not None:
        out["temperature"] = f.number(body["temperature"], "temperature", 0, 2)
    if body.get("top_p") is not None:
        out["top_p"] = f.number(body["top_p"], "top_p", 0, 1)
    limit = _max_tokens(body.get("max_tokens"), body.get("max_completion_tokens"))
    if limit is not None:
        out["max_output_tokens"] = limit
    if body.get("parallel_tool_calls") is not None:
        out["parallel_tool_calls"] = f.boolean(body["parallel_tool_calls"], "parallel_tool_calls")
    return out | sampling.chat_sampling(body)


def _max_tokens(old: object, new: object) -> int | None:
    """max_completion_tokens, or the deprecated max_tokens; both given must agree."""
    old = None if old is None else f.integer(old, "max_tokens", 1)
    new = None if new is None else f.integer(new, "max_completion_tokens", 1)
    if old is not None and new is not None and old != new:
        raise f.invalid_value(
            "max_tokens",
            "it disagrees with max_completion_tokens; send only max_completion_tokens.",
        )
    return new if new is not None else old


def _include_usage(value: object, stream: bool) -> bool:
    if value is None:
        return False
    if not stream:
        raise f.invalid_value("stream_options", "stream_options is only allowed with stream: true.")
    options = f.obj(value, "stream_options")
    f.check_keys(options, frozenset({"include_usage", "include_obfuscation"}), "stream_options")
    if options.get("include_obfuscation") is not None:
        f.boolean(options["include_obfuscation"], "stream_options.include_obfuscation")
    usage = options.get("include_usage")
    return usage is not None and f.boolean(usage, "stream_options.include_usage")


# --- messages --------------------------------------------------------------

# Keys inside messages, content parts and tool calls that this gateway does not know
# (`name`, the SDK helpers' `parsed`, `annotations`, `index`, `parsed_arguments`, ...) are
# ignored, as OpenAI ignores them; the keys it knows keep their type checks.
_PARTS = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}


def _messages(value: object) -> list[pb.Message]:
    items = f.array(value, "messages")
    if not items:
        raise f.invalid_value("messages", "expected at least one message.")
    return [_message(f.obj(m, f"messages[{i}]"), f"messages[{i}]") for i, m in enumerate(items)]


def _message(item: Mapping[str, Any], param: str) -> pb.Message:
    if item.get("role") == "function":
        raise f.unsupported(
            f"{param}.role",
            "The deprecated 'function' role is not supported: answer the assistant's tool_calls "
            "with {'role': 'tool', 'tool_call_id': ..., 'content': ...}.",
        )
    role = f.choice(f.required(item, "role", f"{param}.role"), f"{param}.role", tuple(ROLES))
    if item.get("name") is not None:  # a participant name: checked, not forwarded
        f.string(item["name"], f"{param}.name")
    message = pb.Message(role=ROLES[role])
    if role == "assistant":
        _assistant(item, message, param)
        return message
    message.content.extend(_content(f.required(item, "content", f"{param}.content"), role, param))
    if role == "tool":
        call_id = f.required(item, "tool_call_id", f"{param}.tool_call_id")
        message.tool_call_id = f.string(call_id, f"{param}.tool_call_id")
    return message


def _assistant(item: Mapping[str, Any], message: pb.Message, param: str) -> None:
    if item.get("function_call") is not None:
        raise f.unsupported(
            f"{param}.function_call", "'function_call' is deprecated; replay 'tool_calls' instead."
        )
    if item.get("audio") is not None:
        raise f.unsupported(f"{param}.audio", "Audio replies are not available; send text.")
    if item.get("content") is not None:
        message.content.extend(_content(item["content"], "assistant", param))
    if item.get("refusal") is not None:
        refusal = f.string(item["refusal"], f"{param}.refusal")
        message.content.append(pb.ContentPart(refusal=refusal))
    message.tool_calls.extend(_tool_calls(item.get("tool_calls"), f"{param}.tool_calls"))
    if not message.content and not message.tool_calls:
        raise f.missing(f"{param}.content")


def _content(value: object, role: str, param: str) -> list[pb.ContentPart]:
    if isinstance(value, str):
        return [common.text_part(value)]
    parts = f.array(value, f"{param}.content")
    if not parts:
        raise f.invalid_value(f"{param}.content", "expected a string or at least one part.")
    return [
        _part(f.obj(p, f"{param}.content[{j}]"), role, f"{param}.content[{j}]")
        for j, p in enumerate(parts)
    ]


def _part(part: Mapping[str, Any], role: str, param: str) -> pb.ContentPart:
    kind = part.get("type")
    allowed = _PARTS[role]
    if kind not in allowed:
        if role == "user" and kind in ("input_audio", "file"):
            raise f.unsupported(
                f"{param}.type", f"Content parts of type '{kind}' are not supported; send text."
            )
        raise f.invalid_value(
            f"{param}.type", f"a {role} message takes parts of type {', '.join(allowed)}."
        )
    if kind == "image_url":
        image = f.obj(f.required(part, "image_url", f"{param}.image_url"), f"{param}.image_url")
        return common.image(
            f.required(image, "url", f"{param}.image_url.url"),
            image.get("detail"),
            url_param=f"{param}.image_url.url",
            detail_param=f"{param}.image_url.detail",
        )
    if kind == "refusal":
        refusal = f.required(part, "refusal", f"{param}.refusal")
        return pb.ContentPart(refusal=f.string(refusal, f"{param}.refusal"))
    return common.text_part(f.string(f.required(part, "text", f"{param}.text"), f"{param}.text"))


def _tool_calls(value: object, param: str) -> list[pb.ToolCall]:
    if value is None:
        return []
    calls = f.array(value, param)
    return [_tool_call(f.obj(c, f"{param}[{i}]"), f"{param}[{i}]") for i, c in enumerate(calls)]


def _tool_call(call: Mapping[str, Any], param: str) -> pb.ToolCall:
    if call.get("type", "function") != "function":
        raise f.unsupported(
            f"{param}.type", f"Tool calls of type '{call['type']}' are not supported here."
        )
    fn = f.obj(f.required(call, "function", f"{param}.function"), f"{param}.function")
    return pb.ToolCall(
        id=f.string(f.required(call, "id", f"{param}.id"), f"{param}.id"),
        name=f.string(f.required(fn, "name", f"{param}.function.name"), f"{param}.function.name"),
        arguments=f.string(
            f.required(fn, "arguments", f"{param}.function.arguments"),
            f"{param}.function.arguments",
        ),
    )


# --- tools -----------------------------------------------------------------

_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})


def _tools(value: object) -> list[pb.Tool]:
    if value is None:
        return []
    tools = f.array(value, "tools")
    return [_tool(f.obj(t, f"tools[{i}]"), f"tools[{i}]") for i, t in enumerate(tools)]


def _tool(tool: Mapping[str, Any], param: str) -> pb.Tool:
    kind = tool.get("type")
    if kind != "function":
        spec = tool.get(kind) if isinstance(kind, str) else None
        name = spec.get("name") if isinstance(spec, dict) else None
        raise f.unsupported(
            f"{param}.type",
            f"Tool {name!r} has type {kind!r}: only function tools are supported. Declare "
            "{'type': 'function', 'function': {...}} and execute it client-side.",
        )
    f.check_keys(tool, frozenset({"type", "function"}), param)
    fn = f.obj(f.required(tool, "function", f"{param}.function"), f"{param}.function")
    f.check_keys(fn, _FUNCTION_KEYS, f"{param}.function")
    return common.function_tool(
        f.required(fn, "name", f"{param}.function.name"),
        fn.get("description"),
        fn.get("parameters"),
        fn.get("strict"),
        f"{param}.function",
    )


def _tool_choice(value: object, tools: list[pb.Tool]) -> pb.ToolChoice:
    if isinstance(value, str):
        mode = f.choice(value, "tool_choice", tuple(common.TOOL_CHOICE_MODES))
        if mode == "required" and not tools:
            raise f.invalid_value("tool_choice", "'required' needs at least one tool in 'tools'.")
        return pb.ToolChoice(mode=common.TOOL_CHOICE_MODES[mode])
    choice = f.obj(value, "tool_choice")
    kind = choice.get("type")
    if kind == "function":
        f.check_keys(choice, frozenset({"type", "function"}), "tool_choice")
        fn = f.obj(f.required(choice, "function", "tool_choice.function"), "tool_choice.function")
        f.check_keys(fn, frozenset({"name"}), "tool_choice.function")
        name = f.required(fn, "name", "tool_choice.function.name")
        return common.named_tool_choice(name, tools, "tool_choice.function.name")
    if kind == "allowed_tools":
        return _allowed_tools(choice, tools)
    raise f.unsupported(
        "tool_choice.type",
        f"tool_choice of type {kind!r} is not supported: only function tools exist here.",
    )


def _allowed_tools(choice: Mapping[str, Any], tools: list[pb.Tool]) -> pb.ToolChoice:
    param = "tool_choice.allowed_tools"
    f.check_keys(choice, frozenset({"type", "allowed_tools"}), "tool_choice")
    allowed = f.obj(f.required(choice, "allowed_tools", param), param)
    f.check_keys(allowed, frozenset({"mode", "tools"}), param)
    entries = f.array(f.required(allowed, "tools", f"{param}.tools"), f"{param}.tools")
    names = [_allowed_name(t, f"{param}.tools[{i}]") for i, t in enumerate(entries)]
    return common.allowed_tool_choice(allowed.get("mode"), names, tools, param)


def _allowed_name(value: object, param: str) -> str:
    entry = f.obj(value, param)
    if entry.get("type") != "function":
        raise f.unsupported(f"{param}.type", "Only function tools can be allowed here.")
    f.check_keys(entry, frozenset({"type", "function"}), param)
    fn = f.obj(f.required(entry, "function", f"{param}.function"), f"{param}.function")
    name = f.required(fn, "name", f"{param}.function.name")
    return f.string(name, f"{param}.function.name")


# --- structured output -----------------------------------------------------

_SCHEMA_KEYS = frozenset({"name", "schema", "description", "strict"})


def _response_format(value: object) -> pb.ResponseFormat:
    fmt = f.obj(value, "response_format")
    types = ("text", "json_object", "json_schema")
    kind = f.choice(fmt.get("type"), "response_format.type", types)
    if kind != "json_schema":
        f.check_keys(fmt, frozenset({"type"}), "response_format")
        return common.simple_format(kind)
    f.check_keys(fmt, frozenset({"type", "json_schema"}), "response_format")
    param = "response_format.json_schema"
    schema = f.obj(f.required(fmt, "json_schema", param), param)
    f.check_keys(schema, _SCHEMA_KEYS, param)
    return common.json_schema_format(schema, param)
