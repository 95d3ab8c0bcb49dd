"""POST /v1/responses request JSON -> ChatRequest, plus the values the envelope echoes.

Every top-level field has one treatment, listed in FIELDS (and in the README's
field table): mapped onto the ChatRequest, echoed in the envelope, accepted and
ignored, or rejected when it asks for something a stateless gateway without
hosted tools cannot do. Unknown fields are rejected, as OpenAI rejects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.translate import common
from gateway.translate import fields as f
from gateway.translate.sampling import top_logprobs
from runinfra.chat.v1 import chat_service_pb2 as pb

MAX_INPUT_ITEMS = 2048

ROLES = {
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "system": pb.ROLE_SYSTEM,
    "developer": pb.ROLE_DEVELOPER,
}
_NOT_STORED = "This gateway is stateless and stores nothing; "


_HARMLESS_INCLUDES = frozenset(
    {
        "reasoning.encrypted_content",  # reasoning items carry their text, nothing encrypted
        "message.input_image.image_url",  # input items are not stored or listed
        "file_search_call.results",  # hosted tools are rejected, so never present
        "web_search_call.results",
        "web_search_call.action.sources",
        "code_interpreter_call.outputs",
        "computer_call_output.output.image_url",
    }
)


_LOGPROBS_INCLUDE = "message.output_text.logprobs"
_INCLUDES = _HARMLESS_INCLUDES | {_LOGPROBS_INCLUDE}


# Fields accepted only with a value that asks for nothing: (harmless?, what to do instead).
REJECTED: dict[str, f.Rejection] = {
    "previous_response_id": (
        f.null_or(),
        _NOT_STORED + "send the whole conversation in 'input' (with store: false).",
    ),
    "conversation": (f.null_or(), _NOT_STORED + "send the whole conversation in 'input'."),
    "store": (f.null_or(False), _NOT_STORED + "set store to false (or leave it out)."),
    "background": (
        f.null_or(False),
        "Background responses need stored responses; use stream: true instead.",
    ),
    "prompt": (
        f.null_or(),
        "Stored prompt templates are not available; send 'instructions' and 'input' inline.",
    ),
    "context_management": (
        f.empty,
        "Server-side context compaction is not available; trim 'input' client-side.",
    ),
    "moderation": (
        f.null_or(),
        "Moderation is not available on this gateway; leave 'moderation' out.",
    ),
    "truncation": (
        f.null_or("disabled"),
        "Automatic truncation is not available; trim 'input' client-side.",
    ),
    "service_tier": (
        f.null_or("auto", "default"),
        "Only the 'auto' and 'default' service tiers exist here.",
    ),
}
# Accepted and not forwarded: identifiers and cache hints for OpenAI's own infrastructure.
IGNORED: dict[str, str] = {
    **f.OPENAI_HINTS,
    "stream_options": "only include_obfuscation (padding against side channels); not applied",
    "max_tool_calls": "limits calls to hosted tools, which this gateway rejects; echoed",
    # Codex sends its session, turn and thread ids here; checked (an object of strings).
    "client_metadata": "the client's own ids and tags; not forwarded",
}
MAPPED = frozenset(
    {
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream",
        "tools", "tool_choice", "parallel_tool_calls", "text", "response_format", "reasoning",
        "include", "top_logprobs",
    }
)  # fmt: skip
ECHOED = frozenset({"metadata"})  # repeated in the envelope, not sent to the backend
MAX_CLIENT_METADATA = 64  # entries
MAX_CLIENT_METADATA_KEY = 256  # characters
MAX_CLIENT_METADATA_VALUE = 16384  # characters (Codex's turn metadata is a JSON string)
_SUMMARIES = ("auto", "concise", "detailed")
_REASONING_KEYS = frozenset({"effort", "summary", "generate_summary", "mode", "context"})
FIELDS = MAPPED | ECHOED | REJECTED.keys() | IGNORED.keys()


@dataclass(frozen=True, slots=True)
class Echo:
    """The request values a Response envelope repeats, defaults filled in."""

    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    text: dict[str, Any]
    metadata: dict[str, str]
    max_tool_calls: int | None
    temperature: float
    top_p: float
    max_output_tokens: int | None
    parallel_tool_calls: bool
    reasoning: dict[str, Any] = field(default_factory=lambda: {"effort": None, "summary": None})
    # The backend's name of each function inside a namespace tool -> (namespace, name).
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    top_logprobs: int | None = None  # echoed only when the request gave it


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A validated /v1/responses request."""

    chat: pb.ChatRequest
    stream: bool
    echo: Echo


def parse(body: Mapping[str, Any], default_model: str) -> ResponsesRequest:
    """Validate a request body and translate it; raises InvalidRequest naming the param.
    Each helper validates one concern and returns values; only this function builds."""
    f.check_fields(body, FIELDS, REJECTED)
    instructions = _instructions(body.get("instructions"))
    tools, tools_echo, namespaced = _tools(body.get("tools"))
    tool_choice, tool_choice_echo = _tool_choice(body.get("tool_choice"), tools)
    response_format, text_echo = _text_format(body)
    sampling = _sampling(body)
    logprobs = _logprobs(body)
    effort, reasoning_echo = _reasoning(body.get("reasoning"))
    _client_metadata(body.get("client_metadata"))
    stream = body.get("stream") is not None and f.boolean(body["stream"], "stream")
    chat = pb.ChatRequest(
        model=common.model(f.required(body, "model", "model"), default_model),
        messages=[
            *_system_message(instructions),
            *_messages(f.required(body, "input", "input")),
        ],
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        buffered=not stream,  # only the whole reply is used: the backend may send fewer chunks
        reasoning_effort=effort,
        **sampling,
        **logprobs,
    )
    echo = Echo(
        model=chat.model,
        instructions=instructions,
        tools=tools_echo,
        tool_choice=tool_choice_echo,
        text=text_echo,
        metadata=_metadata(body.get("metadata")),
        max_tool_calls=body.get("max_tool_calls"),
        temperature=sampling.get("temperature", 1.0),
        top_p=sampling.get("top_p", 1.0),
        max_output_tokens=sampling.get("max_output_tokens"),
        parallel_tool_calls=sampling.get("parallel_tool_calls", True),
        top_logprobs=None if body.get("top_logprobs") is None else chat.top_logprobs,
        reasoning=reasoning_echo,
        namespaced=namespaced,
    )
    return ResponsesRequest(chat, stream, echo)


def _sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields given, as ChatRequest keyword arguments."""
    out: dict[str, Any] = {}
    if body.get("temperature") is not None:
        out["temperature"] = f.number(body["temperature"], "temperature", 0, 2)
    if body.get("top_p") is not None:
        out["top_p"] = f.number(body["top_p"], "top_p", 0, 1)
    if body.get("max_output_tokens") is not None:
        out["max_output_tokens"] = f.integer(body["max_output_tokens"], "max_output_tokens", 1)
    if body.get("parallel_tool_calls") is not None:
        out["parallel_tool_calls"] = f.boolean(body["parallel_tool_calls"], "parallel_tool_calls")
    return out


def _logprobs(body: Mapping[str, Any]) -> dict[str, Any]:
    """Logprobs are on with include ["message.output_text.logprobs"] or top_logprobs > 0;
    as ChatRequest keyword arguments (none when off)."""
    top = top_logprobs(body.get("top_logprobs"))
    wanted = _include(body.get("include")) or top > 0
    return {"logprobs": True, "top_logprobs": top} if wanted else {}


def _include(value: object) -> bool:
    """Whether `include` asks for logprobs. Includes of reasoning, hosted tools or stored
    input ask for nothing that exists here: accepted."""
    if value is None:
        return False
    items = f.array(value, "include")
    for item in items:
        if not isinstance(item, str) or item not in _INCLUDES:
            raise f.unsupported(
                "include",
                f"'include' is not supported with {item!r}: only logprobs and includes that "
                "need no stored or hosted data are accepted.",
            )
    return _LOGPROBS_INCLUDE in items


def _reasoning(value: object) -> tuple[pb.ReasoningEffort.ValueType, dict[str, Any]]:
    """reasoning.effort for the backend; summary (and its old name generate_summary) is
    accepted and produces nothing. Returns the effort and the envelope's echo."""
    if value is None:
        return pb.REASONING_EFFORT_UNSPECIFIED, {"effort": None, "summary": None}
    reasoning = f.obj(value, "reasoning")
    f.check_keys(reasoning, _REASONING_KEYS, "reasoning")
    for key in ("mode", "context"):  # how OpenAI runs and replays reasoning: nothing to do here
        if reasoning.get(key) is not None:
            f.string(reasoning[key], f"reasoning.{key}")
    effort = common.reasoning_effort(reasoning.get("effort"), "reasoning.effort")
    summary = None
    for key in ("summary", "generate_summary"):
        if reasoning.get(key) is not None:
            summary = f.choice(reasoning[key], f"reasoning.{key}", _SUMMARIES)
    return effort, {"effort": reasoning.get("effort"), "summary": summary}


def _client_metadata(value: object) -> None:
    """An object of strings, bounded; checked and dropped."""
    if value is None:
        return
    meta = f.obj(value, "client_metadata")
    if len(meta) > MAX_CLIENT_METADATA:
        raise f.invalid_value(
            "client_metadata", f"at most {MAX_CLIENT_METADATA} key-value pairs are allowed."
        )
    for key, item in meta.items():
        param = f"client_metadata.{key[:64]}"
        if len(key) > MAX_CLIENT_METADATA_KEY:
            raise f.invalid_value(param, f"keys are at most {MAX_CLIENT_METADATA_KEY} characters.")
        if len(f.string(item, param)) > MAX_CLIENT_METADATA_VALUE:
            raise f.invalid_value(
                param, f"values are at most {MAX_CLIENT_METADATA_VALUE} characters."
            )


def _instructions(value: object) -> str | None:
    return None if value is None else f.string(value, "instructions")


def _system_message(instructions: str | None) -> list[pb.Message]:
    if instructions is None:
        return []
    return [pb.Message(role=pb.ROLE_SYSTEM, content=[common.text_part(instructions)])]


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    meta = f.obj(value, "metadata")
    if len(meta) > 16:
        raise f.invalid_value("metadata", "at most 16 key-value pairs are allowed.")
    for key, item in meta.items():
        if len(key) > 64 or not isinstance(item, str) or len(item) > 512:
            raise f.invalid_value(
                f"metadata.{key}", "keys are strings of at most 64 characters, values at most 512."
            )
    return dict(meta)


# --- input -----------------------------------------------------------------


def _messages(value: object) -> list[pb.Message]:
    if isinstance(value, str):
        return [pb.Message(role=pb.ROLE_USER, content=[common.text_part(value)])]
    items = f.array(value, "input")
    if len(items) > MAX_INPUT_ITEMS:
        raise f.invalid_value("input", f"at most {MAX_INPUT_ITEMS} input items are allowed.")
    out: list[pb.Message] = []
    for i, item in enumerate(items):
        _add_item(out, f.obj(item, f"input[{i}]"), f"input[{i}]")
    return out


def _add_item(out: list[pb.Message], item: Mapping[str, Any], param: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        out.append(_message(item, param))
    elif kind == "function_call":
        _add_function_call(out, item, param)
    elif kind == "function_call_output":
        out.append(_function_call_output(item, param))
    elif kind == "reasoning":
        return  # replayed reasoning: accepted, not forwarded (the contract has no reasoning input)
    elif kind == "item_reference":
        raise f.unsupported(
            f"{param}.type",
            _NOT_STORED
            + "item references cannot be resolved. Send every item inline (store: false).",
        )
    else:
        raise f.unsupported(
            f"{param}.type",
            f"Input items of type '{kind}' are not supported: this gateway runs no hosted tools.",
        )


def _message(item: Mapping[str, Any], param: str) -> pb.Message:
    # Unknown keys inside items and parts are ignored, as OpenAI ignores them.
    role = f.choice(f.required(item, "role", f"{param}.role"), f"{param}.role", tuple(ROLES))
    content = f.required(item, "content", f"{param}.content")
    message = pb.Message(role=ROLES[role])
    if isinstance(content, str):
        message.content.append(common.text_part(content))
        return message
    for j, part in enumerate(f.array(content, f"{param}.content")):
        message.content.append(
            _part(f.obj(part, f"{param}.content[{j}]"), role, f"{param}.content[{j}]")
        )
    return message


_INPUT_PARTS = ("input_text", "input_image")
_OUTPUT_PARTS = ("output_text", "refusal")


def _part(part: Mapping[str, Any], role: str, param: str) -> pb.ContentPart:
    kind = part.get("type")
    allowed = _OUTPUT_PARTS if role == "assistant" else _INPUT_PARTS
    if kind not in allowed:
        if kind in ("input_file", "input_audio"):
            raise f.unsupported(
                f"{param}.type", f"Content parts of type '{kind}' are not supported."
            )
        raise f.invalid_value(
            f"{param}.type", f"a {role} message takes parts of type {', '.join(allowed)}."
        )
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise f.unsupported(
                f"{param}.file_id", "Images by file_id need the Files API; send image_url."
            )
        return common.image_part(
            f.required(part, "image_url", f"{param}.image_url"), part.get("detail"), param
        )
    if kind == "refusal":
        return pb.ContentPart(
            refusal=f.string(f.required(part, "refusal", f"{param}.refusal"), f"{param}.refusal")
        )
    return common.text_part(f.string(f.required(part, "text", f"{param}.text"), f"{param}.text"))


def _add_function_call(out: list[pb.Message], item: Mapping[str, Any], param: str) -> None:
    name = f.string(f.required(item, "name", f"{param}.name"), f"{param}.name")
    if item.get("namespace") is not None:
        name = qualified(f.string(item["namespace"], f"{param}.namespace"), name)
    call = pb.ToolCall(
        id=f.string(f.required(item, "call_id", f"{param}.call_id"), f"{param}.call_id"),
        name=name,
        arguments=f.string(
            f.required(item, "arguments", f"{param}.arguments"), f"{param}.arguments"
        ),
    )
    # Consecutive calls (and the assistant text right before them) form one assistant turn.
    if out and out[-1].role == pb.ROLE_ASSISTANT:
        out[-1].tool_calls.append(call)
    else:
        out.append(pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[call]))


def _function_call_output(item: Mapping[str, Any], param: str) -> pb.Message:
    call_id = f.string(f.required(item, "call_id", f"{param}.call_id"), f"{param}.call_id")
    output = f.required(item, "output", f"{param}.output")
    message = pb.Message(role=pb.ROLE_TOOL, tool_call_id=call_id)
    if isinstance(output, str):
        message.content.append(common.text_part(output))
        return message
    for j, part in enumerate(f.array(output, f"{param}.output")):
        message.content.append(
            _part(f.obj(part, f"{param}.output[{j}]"), "tool", f"{param}.output[{j}]")
        )
    return message


# --- tools -----------------------------------------------------------------


Tools = tuple[list[pb.Tool], list[dict[str, Any]], dict[str, tuple[str, str]]]


def _tools(value: object) -> Tools:
    """The backend's function tools (namespace tools flattened), what the envelope echoes,
    and the backend name -> (namespace, name) of each function inside a namespace."""
    if value is None:
        return [], [], {}
    tools: list[pb.Tool] = []
    echo: list[dict[str, Any]] = []
    namespaced: dict[str, tuple[str, str]] = {}
    for i, tool in enumerate(f.array(value, "tools")):
        tool = f.obj(tool, f"tools[{i}]")
        if tool.get("type") != "namespace":
            tools.append(_function_tool(tool, f"tools[{i}]"))
            echo.append(_echo_tool(tools[-1]))
            continue
        namespace, members = _namespace(tool, f"tools[{i}]")
        tools += members
        echo.append(
            {
                "type": "namespace",
                "name": namespace,
                "description": tool.get("description") or "",
                "tools": [_echo_tool(t, namespace) for t in members],
            }
        )
        namespaced.update({t.name: (namespace, t.name[len(namespace) + 2 :]) for t in members})
    _check_unique(tools)
    return tools, echo, namespaced


def _function_tool(tool: Mapping[str, Any], param: str) -> pb.Tool:
    kind = tool.get("type")
    if kind == "custom":
        raise f.unsupported(
            f"{param}.type",
            "Custom (freeform) tools are not supported: the backend contract carries JSON "
            "arguments only. Declare a function tool instead.",
        )
    if kind != "function":
        raise f.unsupported(
            f"{param}.type",
            f"Tools of type '{kind}' are not supported: this gateway runs no hosted tools. "
            "Declare a function tool and execute it client-side.",
        )
    return common.function_tool(
        f.required(tool, "name", f"{param}.name"),
        tool.get("description"),
        tool.get("parameters"),
        tool.get("strict"),
        param,
    )


def _namespace(tool: Mapping[str, Any], param: str) -> tuple[str, list[pb.Tool]]:
    """A namespace tool's name and its functions, named `<namespace>__<name>` for the
    backend (unique across namespaces); custom tools in it are refused as at top level."""
    namespace = f.string(f.required(tool, "name", f"{param}.name"), f"{param}.name")
    members = f.array(f.required(tool, "tools", f"{param}.tools"), f"{param}.tools")
    if not members:
        raise f.invalid_value(f"{param}.tools", "a namespace holds at least one tool.")
    out = []
    for j, member in enumerate(members):
        member_param = f"{param}.tools[{j}]"
        member = f.obj(member, member_param)
        name = f.string(f.required(member, "name", f"{member_param}.name"), f"{member_param}.name")
        out.append(_function_tool({**member, "name": qualified(namespace, name)}, member_param))
    return namespace, out


def qualified(namespace: str, name: str) -> str:
    """The backend's name of function `name` in `namespace`."""
    return f"{namespace}__{name}"


def _check_unique(tools: list[pb.Tool]) -> None:
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            raise f.invalid_value(
                "tools", f"two tools are named '{tool.name}' (namespaced as <namespace>__<name>)."
            )
        seen.add(tool.name)


def _echo_tool(tool: pb.Tool, namespace: str = "") -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name[len(namespace) + 2 :] if namespace else tool.name,
        "description": tool.description or None,
        "parameters": orjson.loads(tool.parameters) if tool.parameters else None,
        "strict": tool.strict,
    }


def _tool_choice(
    value: object, tools: list[pb.Tool]
) -> tuple[pb.ToolChoice | None, str | dict[str, Any]]:
    """The backend's tool choice (None: auto), and what the envelope echoes."""
    if value is None:
        return None, "auto"
    if isinstance(value, str):
        modes = common.TOOL_CHOICE_MODES
        return pb.ToolChoice(mode=modes[f.choice(value, "tool_choice", tuple(modes))]), value
    choice = f.obj(value, "tool_choice")
    kind = choice.get("type")
    if kind == "function":
        named = common.named_tool_choice(choice.get("name"), tools, "tool_choice.name")
        return named, {"type": "function", "name": named.function_name}
    if kind == "allowed_tools":
        names = [
            _allowed_name(t, f"tool_choice.tools[{i}]")
            for i, t in enumerate(f.array(choice.get("tools"), "tool_choice.tools"))
        ]
        allowed = common.allowed_tool_choice(choice.get("mode"), names, tools, "tool_choice")
        echo = {
            "type": "allowed_tools",
            "mode": choice["mode"],
            "tools": [{"type": "function", "name": n} for n in names],
        }
        return allowed, echo
    raise f.unsupported(
        "tool_choice.type",
        f"tool_choice of type '{kind}' is not supported: only function tools exist here.",
    )


def _allowed_name(tool: object, param: str) -> str:
    tool = f.obj(tool, param)
    if tool.get("type") != "function":
        raise f.unsupported(f"{param}.type", "Only function tools can be allowed here.")
    return f.string(f.required(tool, "name", f"{param}.name"), f"{param}.name")


# --- structured output -----------------------------------------------------


def _text_format(body: Mapping[str, Any]) -> tuple[pb.ResponseFormat, dict[str, Any]]:
    """text.format and the chat-style response_format (both given must agree): the backend's
    format, and the `text` object the envelope echoes."""
    text = f.obj(body.get("text") or {}, "text")
    f.check_keys(text, frozenset({"format", "verbosity"}), "text")
    if text.get("verbosity") not in (None, "medium"):
        raise f.unsupported(
            "text.verbosity", "Verbosity cannot be honoured by this backend; leave it out."
        )
    fmt = _format(text["format"], "text.format") if text.get("format") is not None else None
    legacy = body.get("response_format")
    if legacy is not None:
        flat = _flatten_response_format(f.obj(legacy, "response_format"))
        legacy_fmt = _format(flat, "response_format")
        if fmt is not None and fmt[0] != legacy_fmt[0]:
            raise f.invalid_value(
                "response_format", "it disagrees with text.format; send only one."
            )
        fmt = legacy_fmt
    echo, response_format = fmt or ({"type": "text"}, common.simple_format("text"))
    return response_format, {"format": echo, "verbosity": "medium"}


def _flatten_response_format(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """Chat's nested {"type": "json_schema", "json_schema": {...}} -> the flat Responses shape."""
    nested = value.get("json_schema")
    if value.get("type") == "json_schema" and isinstance(nested, dict):
        return {"type": "json_schema", **nested}
    return value


_FORMAT_KEYS = frozenset({"type", "name", "schema", "description", "strict"})


def _format(value: object, param: str) -> tuple[dict[str, Any], pb.ResponseFormat]:
    """One format object: what the envelope echoes, and what the backend gets."""
    fmt = f.obj(value, param)
    kind = f.choice(fmt.get("type"), f"{param}.type", ("text", "json_object", "json_schema"))
    if kind != "json_schema":
        f.check_keys(fmt, frozenset({"type"}), param)
        return {"type": kind}, common.simple_format(kind)
    f.check_keys(fmt, _FORMAT_KEYS, param)
    response_format = common.json_schema_format(fmt, param)
    echo = {"type": "json_schema", "name": fmt["name"], "schema": fmt.get("schema") or {}}
    if fmt.get("description") is not None:
        echo["description"] = fmt["description"]
    echo["strict"] = fmt.get("strict")
    return echo, response_format
