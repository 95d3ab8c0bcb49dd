"""ChatRequest -> an upstream /v1/chat/completions body; upstream replies -> ChatChunks.

Pure: no I/O. The server (server.py) sends `request_body(...)`, feeds the reply's
lines to a StreamDecoder, and maps HTTP failures with `status_code` and
`error_message`. Every upstream value is checked before use: a malformed reply
becomes an UpstreamError, never an AttributeError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import orjson

from runinfra.chat.v1 import chat_service_pb2 as pb

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
_MESSAGE_LIMIT = 1000  # characters of an upstream error message kept


class UpstreamError(Exception):
    """A failure to report to the gRPC caller as `code` with `message` as details.
    `detail`, the upstream's own words (which may name its files and hosts), is for
    this backend's log only."""

    def __init__(self, code: grpc.StatusCode, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or message


def invalid(message: str) -> UpstreamError:
    return UpstreamError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- the request -----------------------------------------------------------------------

# Role -> upstream role. Developer instructions go out as "system": the chat templates
# of open models (vLLM, llama.cpp, Ollama, TGI) know "system" and not "developer", and
# the contract defines developer as the newer name for the same thing. Unknown roles
# are treated as ROLE_UNSPECIFIED, which the contract says means user.
ROLES: dict[int, str] = {
    pb.ROLE_UNSPECIFIED: "user",
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_DEVELOPER: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}
DETAILS: dict[int, str] = {
    pb.IMAGE_DETAIL_UNSPECIFIED: "auto",
    pb.IMAGE_DETAIL_AUTO: "auto",
    pb.IMAGE_DETAIL_LOW: "low",
    pb.IMAGE_DETAIL_HIGH: "high",
}
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
# ReasoningEffort -> the upstream's `reasoning_effort` (vLLM, SGLang, OpenAI).
EFFORTS: dict[int, str] = {
    pb.REASONING_EFFORT_MINIMAL: "minimal",
    pb.REASONING_EFFORT_LOW: "low",
    pb.REASONING_EFFORT_MEDIUM: "medium",
    pb.REASONING_EFFORT_HIGH: "high",
}


def request_body(request: pb.ChatRequest) -> dict[str, Any]:
    """The upstream JSON body. Always streamed, with usage, so text flows as generated.

    Optional settings go out only when set. tool_choice and parallel_tool_calls go
    out only with tools (OpenAI and vLLM reject them without). Raises UpstreamError
    (INVALID_ARGUMENT) when a schema in the request is not a JSON object.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.HasField("temperature"):
        body["temperature"] = request.temperature
    if request.HasField("top_p"):
        body["top_p"] = request.top_p
    if request.HasField("max_output_tokens"):
        body["max_tokens"] = request.max_output_tokens
    if request.reasoning_effort in EFFORTS:
        body["reasoning_effort"] = EFFORTS[request.reasoning_effort]
    if request.HasField("response_format"):
        fmt = _response_format(request.response_format)
        if fmt is not None:
            body["response_format"] = fmt
    body.update(_sampling(request))
    if request.tools:
        body["tools"] = [_tool(t, i) for i, t in enumerate(request.tools)]
        if request.HasField("tool_choice"):
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.HasField("parallel_tool_calls"):
            body["parallel_tool_calls"] = request.parallel_tool_calls
    return body


def _sampling(request: pb.ChatRequest) -> dict[str, Any]:
    """Stop sequences, seed, penalties, logit bias and logprobs: each only when set."""
    out: dict[str, Any] = {}
    if request.stop:
        out["stop"] = list(request.stop)
    for name in ("seed", "frequency_penalty", "presence_penalty"):
        if request.HasField(name):
            out[name] = getattr(request, name)
    if request.logit_bias:
        out["logit_bias"] = {str(token): bias for token, bias in request.logit_bias.items()}
    if request.logprobs:
        out["logprobs"] = True
        if request.top_logprobs:
            out["top_logprobs"] = request.top_logprobs
    return out


def _message(message: pb.Message) -> dict[str, Any]:
    role = ROLES.get(message.role, "user")
    parts = [_part(p) for p in message.content if p.WhichOneof("part")]
    out: dict[str, Any] = {"role": role}
    out["content"] = _content(parts)  # "" when a turn only calls tools: some servers reject null
    if role == "assistant" and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in message.tool_calls
        ]
    if role == "tool":
        out["tool_call_id"] = message.tool_call_id
    return out


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part goes out as a plain string (which every server takes); several
    parts, or any image, as a list of parts, for the upstream to join as it does."""
    if not parts:
        return ""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _part(part: pb.ContentPart) -> dict[str, Any]:
    kind = part.WhichOneof("part")
    if kind == "image":
        detail = DETAILS.get(part.image.detail, "auto")
        return {"type": "image_url", "image_url": {"url": part.image.url, "detail": detail}}
    # A refusal is assistant history: replayed as the text the model wrote.
    return {"type": "text", "text": part.refusal if kind == "refusal" else part.text}


def _tool(tool: pb.Tool, i: int) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description:
        fn["description"] = tool.description
    # An explicit empty object schema: some chat templates read parameters.properties.
    fn["parameters"] = (
        json_object(tool.parameters, f"tools[{i}].parameters")
        if tool.parameters
        else dict(_NO_PARAMETERS)
    )
    if tool.strict:
        fn["strict"] = True
    return {"type": "function", "function": fn}


def _tool_choice(choice: pb.ToolChoice) -> str | dict[str, Any]:
    if choice.mode == pb.TOOL_CHOICE_MODE_FUNCTION:
        return {"type": "function", "function": {"name": choice.function_name}}
    if choice.mode == pb.TOOL_CHOICE_MODE_NONE:
        return "none"
    mode = "required" if choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED else "auto"
    if not choice.allowed_function_names:
        return mode
    tools = [{"type": "function", "function": {"name": n}} for n in choice.allowed_function_names]
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}


def _response_format(fmt: pb.ResponseFormat) -> dict[str, Any] | None:
    """None for free text (sent as nothing: every server's default)."""
    if fmt.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        return {"type": "json_object"}
    if fmt.type != pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        return None
    spec = fmt.json_schema
    schema: dict[str, Any] = {
        "name": spec.name,
        "schema": json_object(spec.schema, "response_format.json_schema.schema")
        if spec.schema
        else {},
        "strict": spec.strict,
    }
    if spec.description:
        schema["description"] = spec.description
    return {"type": "json_schema", "json_schema": schema}


def json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise invalid(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid(f"{what} is not a JSON object")
    return value


# --- the reply -------------------------------------------------------------------------

# choices[].finish_reason -> FinishReason. One total function (`finish_reason`):
# function_call is the deprecated name of tool_calls; eos_token and stop_sequence are
# TGI's names for stop; anything else (unknown, absent) ended normally: STOP. A reply
# that called tools and says STOP is reported as TOOL_CALLS (some servers, older
# Ollama among them, say "stop" there), so the caller knows to run the tools.
FINISH_REASONS: dict[str, pb.FinishReason.ValueType] = {
    "stop": pb.FINISH_REASON_STOP,
    "eos_token": pb.FINISH_REASON_STOP,
    "stop_sequence": pb.FINISH_REASON_STOP,
    "length": pb.FINISH_REASON_LENGTH,
    "tool_calls": pb.FINISH_REASON_TOOL_CALLS,
    "function_call": pb.FINISH_REASON_TOOL_CALLS,
    "content_filter": pb.FINISH_REASON_CONTENT_FILTER,
}


def finish_reason(value: object, called_tools: bool = False) -> pb.FinishReason.ValueType:
    reason = pb.FINISH_REASON_STOP
    if isinstance(value, str):
        reason = FINISH_REASONS.get(value, pb.FINISH_REASON_STOP)
    if reason == pb.FINISH_REASON_STOP and called_tools:
        return pb.FINISH_REASON_TOOL_CALLS
    return reason


def token_logprobs(value: object) -> list[pb.TokenLogprob]:
    """A choice's upstream `logprobs` ({"content": [...]}) as TokenLogprobs; malformed
    entries are skipped, malformed bytes left unset."""
    content = _obj(value).get("content")
    return [
        pb.TokenLogprob(
            token=item["token"],
            logprob=_logprob(item.get("logprob")),
            bytes=_bytes(item.get("bytes")),
            top_logprobs=[
                pb.TopLogprob(
                    token=top["token"],
                    logprob=_logprob(top.get("logprob")),
                    bytes=_bytes(top.get("bytes")),
                )
                for top in _list(item.get("top_logprobs"))
                if isinstance(top, dict) and isinstance(top.get("token"), str)
            ],
        )
        for item in _list(content)
        if isinstance(item, dict) and isinstance(item.get("token"), str)
    ]


def _logprob(value: object) -> float:
    """A log probability; anything else is OpenAI's "very unlikely" value."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        return max(float(value), -9999.0)  # also -inf; NaN compares false above
    return -9999.0


def _bytes(value: object) -> bytes | None:
    if isinstance(value, list) and all(type(b) is int and 0 <= b <= 255 for b in value):
        return bytes(value)
    return None


def usage(value: Mapping[str, Any]) -> pb.Usage:
    """An upstream usage object; missing or malformed counts are 0."""
    prompt = _obj(value.get("prompt_tokens_details"))
    completion = _obj(value.get("completion_tokens_details"))
    return pb.Usage(
        input_tokens=_count(value.get("prompt_tokens"), _INT32_MAX),
        output_tokens=_count(value.get("completion_tokens"), _INT32_MAX),
        cached_input_tokens=_count(prompt.get("cached_tokens"), _INT32_MAX),
        reasoning_tokens=_count(completion.get("reasoning_tokens"), _INT32_MAX),
    )


class ChunkDecoder:
    """Folds upstream chat.completion.chunk objects into ChatChunks.

    Text and tool-call deltas go out as they arrive. The finish reason and usage are
    held back and sent together on one last chunk (`finish`), as the contract wants
    them on the last chunk only, while upstreams send the finish reason on the last
    content chunk and the usage on a later chunk with `choices: []`.
    """

    def __init__(self) -> None:
        self._reason: object = None
        self._usage: pb.Usage | None = None
        self._calls: dict[object, int] = {}  # upstream call key -> contract index
        self._last_call: object = None

    def feed(self, obj: object) -> pb.ChatChunk | None:
        """One upstream chunk (or a whole non-streamed completion); the ChatChunk with its
        text and tool-call deltas, or None if it carries neither."""
        if not isinstance(obj, dict):
            raise UpstreamError(grpc.StatusCode.INTERNAL, "upstream sent a non-object chunk")
        if (error := stream_error(obj)) is not None:
            raise error
        if isinstance(obj.get("usage"), dict):
            self._usage = usage(obj["usage"])
        out = pb.ChatChunk()
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # one choice is asked for; ignore any other
            delta = _obj(choice.get("delta") if "delta" in choice else choice.get("message"))
            for key in ("content", "refusal"):  # a streamed refusal is the reply's text
                if isinstance(delta.get(key), str):
                    out.text += delta[key]
            out.logprobs.extend(token_logprobs(choice.get("logprobs")))
            out.reasoning_text += _reasoning(delta)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict):
                    out.tool_calls.append(self._call(call))
            if choice.get("finish_reason") is not None:
                self._reason = choice["finish_reason"]
        return out if out.text or out.tool_calls or out.reasoning_text else None

    def _call(self, call: Mapping[str, Any]) -> pb.ToolCallDelta:
        """Upstream indexes are renumbered from 0 in order of appearance. A server that
        sends no index: a new id starts a new call, no id continues the last one."""
        fn = _obj(call.get("function"))
        call_id = _str(call.get("id"))
        index = call.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            key: object = index
        elif call_id:
            key = ("id", call_id)
        else:
            key = self._last_call if self._last_call is not None else 0
        self._last_call = key
        delta = pb.ToolCallDelta(arguments=_str(fn.get("arguments")))
        if key in self._calls:
            delta.index = self._calls[key]
        else:  # the call's first delta: id and name go out here only
            delta.index = self._calls[key] = len(self._calls)
            delta.id = call_id
            delta.name = _str(fn.get("name"))
        return delta

    def finish(self) -> pb.ChatChunk:
        """The last chunk: the finish reason, and the usage if the upstream sent it."""
        chunk = pb.ChatChunk(finish_reason=finish_reason(self._reason, bool(self._calls)))
        if self._usage is not None:
            chunk.usage.CopyFrom(self._usage)
        return chunk


def _reasoning(delta: Mapping[str, Any]) -> str:
    """Reasoning text: `reasoning_content` (vLLM, SGLang, llama.cpp, DeepSeek) or
    `reasoning` (newer vLLM, Ollama's OpenAI API); one of them if a server sends both."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(delta.get(key), str) and delta[key]:
            return str(delta[key])
    return ""


class StreamDecoder:
    """Lines of an SSE reply -> ChatChunks; the last one goes out at `data: [DONE]`, or
    from `finish()` when the stream ends without it. Lines after [DONE] are ignored."""

    def __init__(self) -> None:
        self.chunks = ChunkDecoder()
        self.done = False
        self._data: list[str] = []

    def feed_line(self, line: str) -> list[pb.ChatChunk]:
        """One line, without its line ending (as httpx's aiter_lines gives them)."""
        if self.done:
            return []
        if not line:  # a blank line ends an event
            return self._dispatch()
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []  # comments (":ping"), event:, id: and retry: lines carry nothing here

    def finish(self) -> list[pb.ChatChunk]:
        """End of the body: the pending event, then the last chunk (once)."""
        out = [] if self.done else self._dispatch()
        if not self.done:
            self.done = True
            out.append(self.chunks.finish())
        return out

    def _dispatch(self) -> list[pb.ChatChunk]:
        if not self._data:
            return []
        data, self._data = "\n".join(self._data), []
        if data.strip() == "[DONE]":
            self.done = True
            return [self.chunks.finish()]
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                grpc.StatusCode.INTERNAL, "upstream sent a stream event that is not JSON"
            ) from None
        chunk = self.chunks.feed(obj)
        return [] if chunk is None else [chunk]


def completion_chunks(obj: object) -> list[pb.ChatChunk]:
    """A non-streamed chat.completion (from a server that ignores `stream`) as chunks."""
    decoder = ChunkDecoder()
    chunk = decoder.feed(obj)
    return [chunk, decoder.finish()] if chunk is not None else [decoder.finish()]


def stream_error(obj: Mapping[str, Any]) -> UpstreamError | None:
    """An error sent in-band as a stream event: {"error": {...}} (OpenAI, llama.cpp,
    newer vLLM), {"error": "..."} (TGI) or {"object": "error", ...} (older vLLM).
    Mapped by its numeric HTTP code when it has one, else INTERNAL."""
    if not obj.get("error") and obj.get("object") != "error":
        return None
    error = _obj(obj.get("error")) or obj
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        status = status_code(code)
    else:
        status = grpc.StatusCode.INTERNAL
    detail = message_of(obj) or "upstream reported an error mid-stream"
    return UpstreamError(status, "The model server reported an error mid-stream.", detail)


# --- models ----------------------------------------------------------------------------


def models_response(obj: object) -> pb.ListModelsResponse:
    """GET /models -> ListModelsResponse; entries without a string id are skipped, a
    missing `created` is 0 and a missing `owned_by` is ""."""
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list):
        raise UpstreamError(grpc.StatusCode.INTERNAL, "upstream /models reply has no data list")
    return pb.ListModelsResponse(
        models=[
            pb.Model(
                id=m["id"],
                created=_count(m.get("created"), _INT64_MAX),
                owned_by=_str(m.get("owned_by")),
            )
            for m in data
            if isinstance(m, dict) and isinstance(m.get("id"), str)
        ]
    )


# --- errors ----------------------------------------------------------------------------

# HTTP status -> gRPC status code. One total function (`status_code`): the table, then
# other 4xx -> FAILED_PRECONDITION (not this request's syntax; the upstream will not
# take it as things stand: 402, 405, 410, 415, ...), other 5xx -> INTERNAL, anything
# else that is not a success (1xx, 3xx: redirects are not followed) -> UNKNOWN.
# UNAVAILABLE, which the gateway retries before the first chunk, is kept for states a
# retry can fix: 502, 503, and no connection at all.
HTTP_TO_GRPC: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(http_status: int) -> grpc.StatusCode:
    if http_status in HTTP_TO_GRPC:
        return HTTP_TO_GRPC[http_status]
    if 400 <= http_status <= 499:
        return grpc.StatusCode.FAILED_PRECONDITION
    if 500 <= http_status <= 599:
        return grpc.StatusCode.INTERNAL
    return grpc.StatusCode.UNKNOWN


# What callers are told of an upstream HTTP failure, by status (the upstream's own text,
# which may name its files, goes to this backend's log only).
_HTTP_MESSAGES = {
    400: "The model server rejected the request.",
    404: "The model server does not serve this model.",
    429: "The model server is rate limiting requests; retry later.",
}


def http_error(http_status: int, reason: str, body: bytes) -> UpstreamError:
    """A non-success reply: a clean message for the caller; the upstream's own message
    when its body has one (else the status line) as the detail for the log."""
    try:
        detail = message_of(orjson.loads(body))
    except orjson.JSONDecodeError:
        detail = ""
    if not detail:
        detail = f"upstream answered HTTP {http_status} {reason}".rstrip()
    message = _HTTP_MESSAGES.get(http_status, "The model server failed to answer.")
    return UpstreamError(status_code(http_status), f"{message} (HTTP {http_status})", detail)


def message_of(obj: object) -> str:
    """The message of an error body: error.message, error (a string), message, detail."""
    if not isinstance(obj, dict):
        return ""
    error = obj.get("error")
    for value in (_obj(error).get("message"), error, obj.get("message"), obj.get("detail")):
        if isinstance(value, str) and value.strip():
            return value.strip()[:_MESSAGE_LIMIT]
    return ""


# --- helpers ---------------------------------------------------------------------------


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return min(value, limit)
