"""Pure, deterministic reply planning for the stub ChatService.

Nothing here does I/O or knows about the gRPC server: `plan(request)` turns a
`ChatRequest` into the exact list of chunks to stream, and raises
`RequestError` for requests the server must reject.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from backend_stub.schema import Budget
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
_WINDOW = 1 << 16  # characters scanned per step of long texts (the GIL is free in between)


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
    """The whole reply. `stream()` makes the chunks as they are sent (none is made ahead):
    the reasoning words of `thinking` (stub-think), then the tool calls or the reply's words
    (with logprobs when `top_logprobs` is not None); the last one carries `finish_reason` and
    `usage`, so `usage.output_tokens` is the number of chunks (one empty chunk when a stop
    sequence leaves no word). A buffered reply is `merged`, made with the plan."""

    finish_reason: pb.FinishReason.ValueType
    usage: pb.Usage
    reply: str
    tool_calls: tuple[PlannedCall, ...]
    thinking: str = ""
    top_logprobs: int | None = None
    merged: pb.ChatChunk | None = None

    @property
    def chunk_count(self) -> int:
        return 1 if self.merged is not None else max(1, self.usage.output_tokens)

    @property
    def chunks(self) -> tuple[pb.ChatChunk, ...]:
        """Every chunk at once (for tests and small replies)."""
        return tuple(self.stream())

    def stream(self) -> Iterator[pb.ChatChunk]:
        if self.merged is not None:
            yield self.merged
            return
        yield from self._one_by_one()

    def _one_by_one(self) -> Iterator[pb.ChatChunk]:
        count = self.usage.output_tokens
        thoughts = (pb.ChatChunk(reasoning_text=w) for w in split_words_lazily(self.thinking))
        pieces = itertools.islice(itertools.chain(thoughts, self._body()), count)
        last = pb.ChatChunk()  # a stop sequence right at the start: no words
        for i, chunk in enumerate(pieces, 1):
            if i == count:
                last = chunk
                break
            yield chunk
        last.finish_reason = self.finish_reason
        last.usage.CopyFrom(self.usage)
        yield last

    def _body(self) -> Iterator[pb.ChatChunk]:
        if self.tool_calls:
            return (c for call in self.tool_calls for c in tool_call_chunks(call))
        return (self._word(w) for w in split_words_lazily(self.reply))

    def _word(self, word: str) -> pb.ChatChunk:
        if self.top_logprobs is None:
            return pb.ChatChunk(text=word)
        return pb.ChatChunk(text=word, logprobs=[token_logprob(word, self.top_logprobs)])

    def merge(self) -> pb.ChatChunk:
        """The whole reply in one chunk, as `coalesce` makes it, without a chunk per word
        of a text reply unless logprobs are asked for."""
        if self.tool_calls or self.top_logprobs is not None:
            return coalesce(list(self._one_by_one()))
        thought = self.usage.reasoning_tokens
        left = self.usage.output_tokens - thought
        whole = self.finish_reason != pb.FINISH_REASON_LENGTH
        merged = pb.ChatChunk(
            reasoning_text=_first_words(self.thinking, thought),
            text=self.reply if whole else _first_words(self.reply, left),
            finish_reason=self.finish_reason,
        )
        merged.usage.CopyFrom(self.usage)
        return merged


def _first_words(text: str, count: int) -> str:
    return "".join(itertools.islice(split_words_lazily(text), count))


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


def split_words_lazily(reply: str) -> Iterator[str]:
    """`split_words`, one piece at a time."""
    return (m.group() for m in _WORD.finditer(reply))


def count_words(text: str) -> int:
    """`len(text.split())`, a window at a time: no list of every word, and no single call
    that holds the GIL for long."""
    total, joined = 0, False
    for start in range(0, len(text), _WINDOW):
        piece = text[start : start + _WINDOW]
        total += len(piece.split()) - (joined and not piece[0].isspace())
        joined = not piece[-1].isspace()
    return total


def contains(text: str, name: str) -> bool:
    """`name in text`, a window at a time (windows overlap by the name's length)."""
    step = max(_WINDOW, len(name))
    return any(
        name in text[start : start + step + len(name)] for start in range(0, len(text), step)
    )


def count_input_tokens(messages: list[pb.Message]) -> int:
    """Whitespace-separated words over every message's content, at least 1."""
    return max(1, sum(count_words(message_text(m)) for m in messages))


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


def _instance_json(schema_text: str, what: str, budget: Budget | None = None) -> str:
    """The minimal instance as JSON; every schema of one request shares `budget`."""
    try:
        instance = minimal_instance(_load_schema(schema_text, what), budget=budget)
        return orjson.dumps(instance).decode()
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise RequestError("invalid_argument", f"{what} is not usable: {exc}") from None


def reply_for(request: pb.ChatRequest, budget: Budget | None = None) -> str:
    """The reply text, honouring response_format."""
    fmt = request.response_format
    if fmt.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        schema = fmt.json_schema.schema
        return _instance_json(schema, "response_format.json_schema.schema", budget)
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
    named = [t for t in _eligible(request) if t.name and contains(text, t.name)]
    parallel = not request.HasField("parallel_tool_calls") or request.parallel_tool_calls
    return named if parallel else named[:1]


def plan_tool_calls(
    tools: list[pb.Tool], said: str | None = None, budget: Budget | None = None
) -> list[PlannedCall]:
    """Deterministic ids `call_stub_<index>` and minimal valid arguments. With `said` (the
    last user text, for stub-args), top-level "stub" strings become the text after the
    tool's name. Every tool's arguments share `budget`."""
    budget = Budget() if budget is None else budget
    return [
        PlannedCall(i, f"call_stub_{i}", t.name, _arguments(t, said, budget))
        for i, t in enumerate(tools)
    ]


def _arguments(tool: pb.Tool, said: str | None, budget: Budget) -> str:
    text = _instance_json(tool.parameters, f"tool {tool.name!r}", budget)
    if said is None or tool.name not in said:
        return text
    value = orjson.loads(text)
    after = said.split(tool.name, 1)[1].strip() or "stub"
    if isinstance(value, dict):
        value = {k: after if v == "stub" else v for k, v in value.items()}
    return orjson.dumps(value).decode()


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


def plan(request: pb.ChatRequest, budget: Budget | None = None) -> Plan:
    """Everything the stub sends for `request`; raises RequestError to reject it. The chunks
    themselves are made as they are sent (`Plan.stream`)."""
    validate(request)
    budget = Budget() if budget is None else budget
    said = last_user_text(request) if request.model == ARGS else None
    calls = plan_tool_calls(select_tools(request), said, budget)
    reply = "" if calls else cut_at_stop(reply_for(request, budget), request.stop)
    thinking = THINKING + last_user_text(request) if request.model == THINK else ""
    thought = count_words(thinking)
    count = thought + (2 * len(calls) if calls else count_words(reply))
    finish = pb.FINISH_REASON_TOOL_CALLS if calls else pb.FINISH_REASON_STOP
    if request.HasField("max_output_tokens") and count > request.max_output_tokens:
        count, finish = request.max_output_tokens, pb.FINISH_REASON_LENGTH
    usage = pb.Usage(
        input_tokens=count_input_tokens(list(request.messages)),
        output_tokens=count,
        reasoning_tokens=min(thought, count),
    )
    logprobs = request.top_logprobs if request.logprobs else None
    planned = Plan(finish, usage, reply, tuple(calls), thinking, logprobs)
    if request.buffered and request.model != FAIL_MID:
        return dataclasses.replace(planned, merged=planned.merge())
    return planned


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
