"""Typed results: frozen dataclasses, built from the gateway's JSON in one place each.

Dataclasses rather than pydantic: the SDK then depends on httpx, grpcio and protobuf only
(see README "The Python SDK"). Each `*.of(data)` reads the fields the gateway documents; the
rest of the JSON stays in `raw` for anything newer than this SDK.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the transport knows of a call: the gateway's `x-request-id`, the
    `X-Client-Request-Id` the SDK sent, and whether the answer was an idempotent replay."""

    request_id: str | None = None
    client_request_id: str | None = None
    replayed: bool = False


# --- logprobs (both APIs) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One of the likeliest tokens at a position. `bytes` is the token's UTF-8 (None when the
    gateway did not say)."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The log probability of one generated token, and the likeliest tokens at its position."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    top_logprobs: tuple[TopLogprob, ...] = ()

    @staticmethod
    def of(data: JSON) -> TokenLogprob:
        tops = tuple(
            TopLogprob(t["token"], t["logprob"], _bytes(t.get("bytes")))
            for t in data.get("top_logprobs") or ()
        )
        return TokenLogprob(data["token"], data["logprob"], _bytes(data.get("bytes")), tops)


def _bytes(value: object) -> tuple[int, ...] | None:
    return tuple(value) if isinstance(value, list) else None


def logprobs_of(entries: object) -> tuple[TokenLogprob, ...]:
    """A JSON array of logprob entries (either API's shape); () for none."""
    return tuple(TokenLogprob.of(e) for e in entries) if isinstance(entries, list) else ()


def choice_logprobs(choice: JSON) -> tuple[TokenLogprob, ...] | None:
    """A chat choice's `logprobs.content`; None when logprobs were not asked for."""
    logprobs = choice.get("logprobs")
    return logprobs_of(logprobs.get("content")) if isinstance(logprobs, Mapping) else None


# --- /v1/responses -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    total_tokens: int

    @staticmethod
    def of(data: JSON | None) -> Usage | None:
        if not data:
            return None
        return Usage(data["input_tokens"], data["output_tokens"], data["total_tokens"])


@dataclass(frozen=True, slots=True)
class OutputText:
    """One content part of an output message: `type` is `output_text` or `refusal`;
    `logprobs` when the request included `message.output_text.logprobs`."""

    type: str
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputMessage:
    id: str
    role: str
    status: str
    content: tuple[OutputText, ...]
    type: str = "message"

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.content if c.type == "output_text")


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A tool call for the client to run; send its result back as `function_call_output`."""

    id: str
    call_id: str
    name: str
    arguments: str
    status: str
    type: str = "function_call"


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What a reasoning model thought before it answered."""

    id: str
    text: str
    status: str
    type: str = "reasoning"


OutputItem = OutputMessage | FunctionCall | Reasoning


def output_item(data: JSON) -> OutputItem | None:
    """An output item, None for a kind this SDK does not know."""
    if data.get("type") == "message":
        parts = tuple(
            OutputText(
                p["type"], p.get("text") or p.get("refusal") or "", logprobs_of(p.get("logprobs"))
            )
            for p in data.get("content", ())
        )
        return OutputMessage(data["id"], data["role"], data["status"], parts)
    if data.get("type") == "function_call":
        return FunctionCall(
            data["id"], data["call_id"], data["name"], data["arguments"], data["status"]
        )
    if data.get("type") == "reasoning":
        text = "".join(p.get("text", "") for p in data.get("content") or ())
        return Reasoning(data["id"], text, data.get("status", "completed"))
    return None


@dataclass(frozen=True, slots=True)
class Response:
    """A Responses API envelope. `status` is `completed`, `incomplete` or `failed`."""

    id: str
    model: str
    status: str
    created_at: int
    output: tuple[OutputItem, ...]
    usage: Usage | None
    incomplete_reason: str | None
    info: CallInfo = field(default_factory=CallInfo)
    raw: JSON = field(default_factory=dict, repr=False)

    @staticmethod
    def of(data: JSON, info: CallInfo) -> Response:
        items = (output_item(i) for i in data.get("output", ()))
        return Response(
            id=data["id"],
            model=data["model"],
            status=data["status"],
            created_at=data["created_at"],
            output=tuple(i for i in items if i is not None),
            usage=Usage.of(data.get("usage")),
            incomplete_reason=(data.get("incomplete_details") or {}).get("reason"),
            info=info,
            raw=data,
        )

    @property
    def output_text(self) -> str:
        """The text of every output message, joined."""
        return "".join(i.text for i in self.output if isinstance(i, OutputMessage))

    @property
    def reasoning_text(self) -> str:
        """The text of every reasoning item, joined ("" from a model that does not reason)."""
        return "".join(i.text for i in self.output if isinstance(i, Reasoning))

    @property
    def function_calls(self) -> list[FunctionCall]:
        return [i for i in self.output if isinstance(i, FunctionCall)]

    @property
    def request_id(self) -> str | None:
        return self.info.request_id

    @property
    def replayed(self) -> bool:
        return self.info.replayed


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """One Responses stream event. `delta` is set on `*.delta` events, `item` on
    `response.output_item.*`, `response` on `response.created`/`in_progress`/`completed`/
    `incomplete`; `logprobs` on `response.output_text.delta`/`.done` when asked for; `raw` is
    the whole event."""

    type: str
    sequence_number: int
    delta: str = ""
    logprobs: tuple[TokenLogprob, ...] = ()
    item: OutputItem | None = None
    response: Response | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @staticmethod
    def of(data: JSON, info: CallInfo) -> ResponseEvent:
        item, response = data.get("item"), data.get("response")
        return ResponseEvent(
            type=data["type"],
            sequence_number=data.get("sequence_number", 0),
            delta=data.get("delta", "") if isinstance(data.get("delta"), str) else "",
            logprobs=logprobs_of(data.get("logprobs")),
            item=output_item(item) if isinstance(item, Mapping) else None,
            response=Response.of(response, info) if isinstance(response, Mapping) else None,
            raw=data,
        )


# --- /v1/chat/completions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call in a chat message; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str

    @staticmethod
    def of(data: JSON) -> ToolCall:
        function = data.get("function") or {}
        return ToolCall(data.get("id", ""), function.get("name", ""), function.get("arguments", ""))


@dataclass(frozen=True, slots=True)
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @staticmethod
    def of(data: JSON | None) -> ChatUsage | None:
        if not data:
            return None
        return ChatUsage(data["prompt_tokens"], data["completion_tokens"], data["total_tokens"])


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str | None
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning_content: str | None = None


@dataclass(frozen=True, slots=True)
class ChatChoice:
    index: int
    message: ChatMessage
    finish_reason: str | None
    logprobs: tuple[TokenLogprob, ...] | None = None  # `logprobs.content`, when asked for


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    id: str
    model: str
    created: int
    choices: tuple[ChatChoice, ...]
    usage: ChatUsage | None
    info: CallInfo = field(default_factory=CallInfo)
    raw: JSON = field(default_factory=dict, repr=False)

    @staticmethod
    def of(data: JSON, info: CallInfo) -> ChatCompletion:
        choices = tuple(
            ChatChoice(
                c["index"],
                ChatMessage(
                    c["message"].get("role", "assistant"),
                    c["message"].get("content"),
                    c["message"].get("refusal"),
                    tuple(ToolCall.of(t) for t in c["message"].get("tool_calls") or ()),
                    c["message"].get("reasoning_content"),
                ),
                c.get("finish_reason"),
                choice_logprobs(c),
            )
            for c in data.get("choices", ())
        )
        usage = ChatUsage.of(data.get("usage"))
        return ChatCompletion(
            data["id"], data["model"], data["created"], choices, usage, info, data
        )

    @property
    def output_text(self) -> str:
        """The first choice's text ("" when it has none, e.g. only tool calls)."""
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def request_id(self) -> str | None:
        return self.info.request_id

    @property
    def replayed(self) -> bool:
        return self.info.replayed


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: `id` and `name` come once per call, `arguments` in
    fragments; `index` says which call."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatDelta:
    role: str | None
    content: str | None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    reasoning_content: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkChoice:
    index: int
    delta: ChatDelta
    finish_reason: str | None
    logprobs: tuple[TokenLogprob, ...] | None = None  # this delta's tokens, when asked for


def _tool_call_delta(data: JSON) -> ToolCallDelta:
    function = data.get("function") or {}
    return ToolCallDelta(
        data["index"], data.get("id"), function.get("name"), function.get("arguments") or ""
    )


@dataclass(frozen=True, slots=True)
class ChatCompletionChunk:
    """One streamed `chat.completion.chunk`; the usage chunk has no choices."""

    id: str
    model: str
    created: int
    choices: tuple[ChunkChoice, ...]
    usage: ChatUsage | None
    raw: JSON = field(default_factory=dict, repr=False)

    @staticmethod
    def of(data: JSON) -> ChatCompletionChunk:
        choices = tuple(
            ChunkChoice(
                c["index"],
                ChatDelta(
                    c["delta"].get("role"),
                    c["delta"].get("content"),
                    tuple(_tool_call_delta(t) for t in c["delta"].get("tool_calls") or ()),
                    c["delta"].get("reasoning_content"),
                ),
                c.get("finish_reason"),
                choice_logprobs(c),
            )
            for c in data.get("choices", ())
        )
        usage = ChatUsage.of(data.get("usage"))
        return ChatCompletionChunk(data["id"], data["model"], data["created"], choices, usage, data)

    @property
    def text(self) -> str:
        """This chunk's text ("" if none; with n > 1, every choice's)."""
        return "".join(c.delta.content or "" for c in self.choices)


# --- /v1/models --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    created: int
    owned_by: str

    @staticmethod
    def of(data: JSON) -> Model:
        return Model(data["id"], data["created"], data["owned_by"])


@dataclass(frozen=True, slots=True)
class ModelList:
    data: tuple[Model, ...]
    info: CallInfo = field(default_factory=CallInfo)

    @staticmethod
    def of(data: JSON, info: CallInfo) -> ModelList:
        return ModelList(tuple(Model.of(m) for m in data.get("data", ())), info)

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.data]

    @property
    def request_id(self) -> str | None:
        return self.info.request_id
