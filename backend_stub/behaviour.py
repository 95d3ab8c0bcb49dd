"""Pure, deterministic reply planning for the stub ChatService.

Nothing here does I/O or knows about the gRPC server: `plan(request)` turns a
`ChatRequest` into the exact list of chunks to stream, and raises
`RequestError` for requests the server must reject.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from backend_stub.schema import minimal_instance as minimal_instance  # re-exported
from runinfra import contract
from runinfra.chat.v1 import chat_service_pb2 as pb

CREATED = 1700000000
OWNED_BY = "runinfra"
ECHO = "stub-echo"
FAIL_BEFORE = "stub-fail-before"
FAIL_MID = "stub-fail-mid"
SLOW = "stub-slow"
FAIL_ONCE = "stub-fail-once"  # UNAVAILABLE on the first call of each request id
RATE_LIMITED = "stub-rate-limited"  # RESOURCE_EXHAUSTED before any chunk
THINK = "stub-think"  # reasoning text first ("Thinking about: ..."), then the usual reply
ARGS = "stub-args"  # a called tool's top-level string arguments: the text after its name
# UNAVAILABLE on every call of the first gateway request of each client request id
FAIL_FIRST_ATTEMPT = "stub-fail-first-attempt"
MODEL_IDS: tuple[str, ...] = (
    ECHO, FAIL_BEFORE, FAIL_MID, SLOW, FAIL_ONCE, RATE_LIMITED, THINK, ARGS, FAIL_FIRST_ATTEMPT,
)  # fmt: skip
THINKING = "Thinking about: "
FAIL_MID_AFTER = 2
SLOW_DELAY = 0.05
FAIL_BEFORE_MESSAGE = "stub: scripted failure before the first chunk"
FAIL_MID_MESSAGE = "stub: scripted failure in the middle of the stream"
FAIL_ONCE_MESSAGE = "stub: scripted failure of the first attempt"
RATE_LIMITED_MESSAGE = "stub: scripted rate limit"
FAIL_FIRST_ATTEMPT_MESSAGE = "stub: scripted failure of the first request of this client request id"
EMPTY_REPLY = "(empty)"
_WORD = re.compile(r"\s*\S+\s*")


class RequestError(ValueError):
    """A request the stub rejects; `kind` names the gRPC status to use."""

    def __init__(self, kind: Literal["invalid_argument", "not_found"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class PlannedCall:
    """One tool call the stub makes."""

    index: int
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Plan:
    """The whole reply: `chunks` are sent in order; the last one carries
    `finish_reason` and `usage`, so `usage.output_tokens == len(chunks)` (but for a reply
    that a stop sequence cut to nothing: one empty chunk, 0 output tokens)."""

    chunks: tuple[pb.ChatChunk, ...]
    finish_reason: pb.FinishReason.ValueType
    usage: pb.Usage
    reply: str
    tool_calls: tuple[PlannedCall, ...]


def list_models() -> pb.ListModelsResponse:
    """The models the stub serves."""
    models = [pb.Model(id=m, created=CREATED, owned_by=OWNED_BY) for m in MODEL_IDS]
    return pb.ListModelsResponse(models=models)


def message_text(message: pb.Message) -> str:
    """A message's text: text and refusal parts joined with one space, images as `[image]`."""
    pieces: list[str] = []
    for part in message.content:
        kind = part.WhichOneof("part")
        if kind == "image":
            pieces.append("[image]")
        elif kind == "text":
            pieces.append(part.text)
        elif kind == "refusal":
            pieces.append(part.refusal)
    return " ".join(pieces)


def split_words(reply: str) -> list[str]:
    """One piece per word, each with the whitespace after it (leading whitespace
    goes with the first word), so that `"".join(pieces) == reply` for non-blank replies."""
    return _WORD.findall(reply)


def count_input_tokens(messages: list[pb.Message]) -> int:
    """Whitespace-separated words over every message's content, at least 1."""
    return max(1, sum(len(message_text(m).split()) for m in messages))


def _is_user(message: pb.Message) -> bool:
    return message.role in (pb.ROLE_USER, pb.ROLE_UNSPECIFIED)


def last_user_text(request: pb.ChatRequest) -> str:
    """The text of the last user (or role-less) message, "" if there is none."""
    for message in reversed(request.messages):
        if _is_user(message):
            return message_text(message)
    return ""


def _ends_with_tool_result(request: pb.ChatRequest) -> bool:
    return len(request.messages) > 0 and request.messages[-1].role == pb.ROLE_TOOL


def text_reply(request: pb.ChatRequest) -> str:
    """The plain-text reply: `Tool result: ...`, the last user text, or `(empty)`."""
    if _ends_with_tool_result(request):
        return f"Tool result: {message_text(request.messages[-1])}"
    text = last_user_text(request)
    return text if text.strip() else EMPTY_REPLY


def _load_schema(text: str, what: str) -> object:
    if not text.strip():
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RequestError("invalid_argument", f"{what} is not valid JSON: {exc}") from None


def _instance_json(schema_text: str, what: str) -> str:
    try:
        return orjson.dumps(minimal_instance(_load_schema(schema_text, what))).decode()
    except (ValueError, TypeError) as exc:
        raise RequestError("invalid_argument", f"{what} is not usable: {exc}") from None


def reply_for(request: pb.ChatRequest) -> str:
    """The reply text, honouring response_format."""
    fmt = request.response_format
    if fmt.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        return _instance_json(fmt.json_schema.schema, "response_format.json_schema.schema")
    if fmt.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        return orjson.dumps({"echo": text_reply(request)}).decode()
    return text_reply(request)


def _eligible(request: pb.ChatRequest) -> list[pb.Tool]:
    allowed = set(request.tool_choice.allowed_function_names)
    return [t for t in request.tools if not allowed or t.name in allowed]


def _forced_tool(request: pb.ChatRequest) -> pb.Tool:
    choice = request.tool_choice
    by_name = {t.name: t for t in request.tools}
    if choice.mode == pb.TOOL_CHOICE_MODE_FUNCTION:
        wanted = [choice.function_name]
    else:
        wanted = list(choice.allowed_function_names) or [t.name for t in request.tools[:1]]
    for name in wanted:
        if name in by_name:
            return by_name[name]
    raise RequestError("invalid_argument", f"tool_choice names no tool in tools: {wanted}")


def select_tools(request: pb.ChatRequest) -> list[pb.Tool]:
    """The tools the stub calls this turn, in order (empty for a text turn)."""
    mode = request.tool_choice.mode
    if not request.tools or mode == pb.TOOL_CHOICE_MODE_NONE or _ends_with_tool_result(request):
        return []
    if mode in (pb.TOOL_CHOICE_MODE_REQUIRED, pb.TOOL_CHOICE_MODE_FUNCTION):
        return [_forced_tool(request)]
    text = last_user_text(request)
    named = [t for t in _eligible(request) if t.name and t.name in text]
    parallel = not request.HasField("parallel_tool_calls") or request.parallel_tool_calls
    return named if parallel else named[:1]


def plan_tool_calls(tools: list[pb.Tool], said: str | None = None) -> list[PlannedCall]:
    """Deterministic ids `call_stub_<index>` and minimal valid arguments. With `said` (the
    last user text, for stub-args), top-level "stub" strings become the text after the
    tool's name."""
    return [
        PlannedCall(i, f"call_stub_{i}", t.name, _arguments(t, said)) for i, t in enumerate(tools)
    ]


def _arguments(tool: pb.Tool, said: str | None) -> str:
    text = _instance_json(tool.parameters, f"tool {tool.name!r}")
    if said is None or tool.name not in said:
        return text
    value = orjson.loads(text)
    after = said.split(tool.name, 1)[1].strip() or "stub"
    if isinstance(value, dict):
        value = {k: after if v == "stub" else v for k, v in value.items()}
    return orjson.dumps(value).decode()


def _reasoning_chunks(request: pb.ChatRequest) -> list[pb.ChatChunk]:
    """stub-think: `Thinking about: <last user text>`, one word per chunk."""
    if request.model != THINK:
        return []
    return [pb.ChatChunk(reasoning_text=w) for w in split_words(THINKING + last_user_text(request))]


def tool_call_chunks(call: PlannedCall) -> list[pb.ChatChunk]:
    """Two deltas: index, id, name and the first half of the arguments; then the rest."""
    half = len(call.arguments) // 2
    first = pb.ToolCallDelta(
        index=call.index, id=call.id, name=call.name, arguments=call.arguments[:half]
    )
    rest = pb.ToolCallDelta(index=call.index, arguments=call.arguments[half:])
    return [pb.ChatChunk(tool_calls=[first]), pb.ChatChunk(tool_calls=[rest])]


def validate(request: pb.ChatRequest) -> None:
    """Reject what the stub cannot serve."""
    if not request.model:
        raise RequestError("invalid_argument", "model is required")
    if request.model not in MODEL_IDS:
        raise RequestError("not_found", f"The model '{request.model}' does not exist")
    if request.HasField("max_output_tokens") and request.max_output_tokens <= 0:
        raise RequestError("invalid_argument", "max_output_tokens must be positive")
    if problem := sampling_problem(request):
        raise RequestError("invalid_argument", problem)


def sampling_problem(request: pb.ChatRequest) -> str | None:
    """What falls outside the ranges the contract documents, if anything."""
    if len(request.stop) > contract.MAX_STOP_SEQUENCES or "" in request.stop:
        return f"stop takes at most {contract.MAX_STOP_SEQUENCES} non-empty sequences"
    if not 0 <= request.top_logprobs <= contract.MAX_TOP_LOGPROBS:
        return f"top_logprobs must be between 0 and {contract.MAX_TOP_LOGPROBS}"
    penalty, bias = contract.PENALTY_LIMIT, contract.LOGIT_BIAS_LIMIT
    for name in ("frequency_penalty", "presence_penalty"):
        if not -penalty <= getattr(request, name) <= penalty:
            return f"{name} must be between -{penalty} and {penalty}"
    if any(abs(b) > bias for b in request.logit_bias.values()):
        return f"logit_bias values must be between -{bias} and {bias}"
    return None


def cut_at_stop(reply: str, stop: Sequence[str]) -> str:
    """The reply before the first occurrence of any stop sequence (all of it if none occurs)."""
    cuts = [i for i in (reply.find(s) for s in stop if s) if i >= 0]
    return reply[: min(cuts)] if cuts else reply


def token_logprob(token: str, top: int) -> pb.TokenLogprob:
    """The stub's logprob of one token (a word chunk: a word and its whitespace): minus a
    tenth per character of the word. Alternative k (from 0) is the token with k written
    after its word (the token itself for k = 0), a whole unit less likely per k."""
    word = token.strip()
    start = token.index(word)
    head, tail = token[:start], token[start + len(word) :]
    alternatives = [token] + [f"{head}{word}{k}{tail}" for k in range(1, top)]
    return pb.TokenLogprob(
        token=token,
        logprob=-len(word) / 10,
        bytes=token.encode(),
        top_logprobs=[
            pb.TopLogprob(token=t, logprob=-(len(word) + 10 * k) / 10, bytes=t.encode())
            for k, t in enumerate(alternatives[:top])
        ],
    )


def word_chunk(word: str, request: pb.ChatRequest) -> pb.ChatChunk:
    """One word's chunk, with its logprob when the request asks for logprobs."""
    if not request.logprobs:
        return pb.ChatChunk(text=word)
    return pb.ChatChunk(text=word, logprobs=[token_logprob(word, request.top_logprobs)])


def plan(request: pb.ChatRequest) -> Plan:
    """Everything the stub sends for `request`; raises RequestError to reject it."""
    validate(request)
    said = last_user_text(request) if request.model == ARGS else None
    calls = plan_tool_calls(select_tools(request), said)
    reply = "" if calls else cut_at_stop(reply_for(request), request.stop)
    chunks = [c for call in calls for c in tool_call_chunks(call)]
    chunks = chunks or [word_chunk(w, request) for w in split_words(reply)]
    chunks = _reasoning_chunks(request) + chunks
    finish = pb.FINISH_REASON_TOOL_CALLS if calls else pb.FINISH_REASON_STOP
    if request.HasField("max_output_tokens") and len(chunks) > request.max_output_tokens:
        chunks, finish = chunks[: request.max_output_tokens], pb.FINISH_REASON_LENGTH
    usage = pb.Usage(
        input_tokens=count_input_tokens(list(request.messages)),
        output_tokens=len(chunks),
        reasoning_tokens=sum(1 for c in chunks if c.reasoning_text),
    )
    chunks = chunks or [pb.ChatChunk()]  # a stop sequence right at the start: no words
    chunks[-1].finish_reason = finish
    chunks[-1].usage.CopyFrom(usage)
    if request.buffered and request.model != FAIL_MID:
        chunks = [coalesce(chunks)]
    return Plan(tuple(chunks), finish, usage, reply, tuple(calls))


def coalesce(chunks: list[pb.ChatChunk]) -> pb.ChatChunk:
    """The whole reply in one chunk (for a buffered caller): the reasoning and the text
    joined, one delta per tool call with its arguments joined, and the last chunk's finish
    reason and usage."""
    calls: dict[int, pb.ToolCallDelta] = {}
    for delta in (d for c in chunks for d in c.tool_calls):
        call = calls.setdefault(delta.index, pb.ToolCallDelta(index=delta.index))
        call.id, call.name = call.id or delta.id, call.name or delta.name
        call.arguments += delta.arguments
    merged = pb.ChatChunk(
        reasoning_text="".join(c.reasoning_text for c in chunks),
        text="".join(c.text for c in chunks),
        tool_calls=list(calls.values()),
        logprobs=[lp for c in chunks for lp in c.logprobs],
        finish_reason=chunks[-1].finish_reason,
    )
    merged.usage.CopyFrom(chunks[-1].usage)
    return merged
