"""runinfra.coalesce: merging chunks keeps text, tool-call arguments, usage and finish reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from backend_stub import behaviour
from runinfra import coalesce
from runinfra.chat.v1 import chat_service_pb2 as pb


def request(text: str, tools: bool = False, model: str = "stub-echo") -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    req = pb.ChatRequest(model=model, messages=[message])
    if tools:
        schema = '{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}'
        req.tools.extend([pb.Tool(name="f", parameters=schema), pb.Tool(name="g")])
    return req


def whole(chunks: list[pb.ChatChunk]) -> tuple[str, str, dict[int, str], int, pb.Usage]:
    """What a client keeps: the reasoning, the text, each call's id+name+arguments, finish
    reason, usage."""
    calls: dict[int, str] = {}
    for d in (d for c in chunks for d in c.tool_calls):
        calls[d.index] = calls.get(d.index, "") + d.id + d.name + d.arguments
    reasoning = "".join(c.reasoning_text for c in chunks)
    last = chunks[-1]
    return reasoning, "".join(c.text for c in chunks), calls, last.finish_reason, last.usage


def test_merge_joins_text_and_arguments_and_keeps_the_last_finish_and_usage() -> None:
    chunks = list(behaviour.plan(request("call f and g", tools=True)).chunks)
    assert len(chunks) == 4
    merged = coalesce.merge(chunks)
    assert whole([merged]) == whole(chunks)
    assert [(d.index, d.id, d.name) for d in merged.tool_calls] == [
        (0, "call_stub_0", "f"),
        (1, "call_stub_1", "g"),
    ]
    assert merged.finish_reason == pb.FINISH_REASON_TOOL_CALLS


@pytest.mark.parametrize(
    ("delay", "hold", "sizes"), [(0.02, 0.0, [1] * 9), (0.02, 0.06, [1, 4, 4])]
)
def test_paced_sends_the_first_chunk_alone_then_one_chunk_per_window(
    delay: float, hold: float, sizes: list[int]
) -> None:
    chunks = list(behaviour.plan(request("one two three four five six seven eight nine")).chunks)
    sent = coalesce.paced(chunks, delay, hold)
    assert [made for made, _ in sent] == sizes
    assert sent[0][1] == chunks[0]
    assert whole([c for _, c in sent]) == whole(chunks)


def test_paced_joins_reasoning_before_text() -> None:
    chunks = list(behaviour.plan(request("a b", model="stub-think")).chunks)
    assert chunks[0].reasoning_text and not chunks[-1].reasoning_text
    sent = coalesce.paced(chunks, 0.02, 1.0)
    assert len(sent) == 2
    assert sent[1][1].reasoning_text and sent[1][1].text == "a b"
    assert whole([c for _, c in sent]) == whole(chunks)


def test_paced_joins_logprobs_in_token_order() -> None:
    req = request("one two three four")
    req.logprobs, req.top_logprobs = True, 2
    chunks = list(behaviour.plan(req).chunks)
    sent = [c for _, c in coalesce.paced(chunks, 0.02, 1.0)]
    assert len(sent) == 2
    assert [lp for c in sent for lp in c.logprobs] == [lp for c in chunks for lp in c.logprobs]
    assert b"".join(lp.bytes for lp in sent[1].logprobs) == sent[1].text.encode()


def test_paced_without_delay_sends_the_rest_at_once() -> None:
    chunks = list(behaviour.plan(request("a b c d e")).chunks)
    sent = coalesce.paced(chunks, 0.0, 0.05)
    assert [(made, c.text) for made, c in sent] == [(1, "a "), (4, "b c d e")]


def test_a_field_merge_does_not_know_is_never_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = list(behaviour.plan(request("a b c")).chunks)  # the last one carries usage
    monkeypatch.setattr(coalesce, "MERGEABLE", frozenset({"text"}))
    sent = coalesce.paced(chunks, 0.02, 1.0)
    assert [c.text for _, c in sent] == ["a ", "b ", "c"]
    assert sent[-1][1] is chunks[-1]


async def source(
    pieces: list[str | float | Exception], closed: list[bool]
) -> AsyncGenerator[pb.ChatChunk, None]:
    """Text chunks; a float sleeps that long; an exception is raised."""
    try:
        for piece in pieces:
            if isinstance(piece, float):
                await asyncio.sleep(piece)
            elif isinstance(piece, Exception):
                raise piece
            else:
                yield pb.ChatChunk(text=piece)
    finally:
        closed.append(True)


async def texts(pieces: list[str | float | Exception], hold: float) -> list[str]:
    return [c.text async for c in coalesce.held(source(pieces, []), hold)]


def test_held_without_a_hold_passes_every_chunk_through() -> None:
    assert asyncio.run(texts(["a", "b", 0.01, "c"], 0.0)) == ["a", "b", "c"]


def test_held_joins_what_comes_within_the_window() -> None:
    got = asyncio.run(texts(["a", 0.01, "b", "c", "d", 0.3, "e"], 0.1))
    assert got == ["a", "bcd", "e"]


def test_held_raises_the_failure_after_what_came_before() -> None:
    async def main() -> list[str]:
        out: list[str] = []
        with pytest.raises(ValueError, match="boom"):
            async for c in coalesce.held(source(["a", "b", "c", ValueError("boom")], []), 0.05):
                out.append(c.text)
        return out

    assert asyncio.run(main()) == ["a", "bc"]


def test_closing_held_closes_the_source_at_once() -> None:
    async def main() -> list[bool]:
        closed: list[bool] = []
        stream = coalesce.held(source(["a", "b", 10.0, "c"], closed), 0.05)
        assert (await anext(stream)).text == "a"
        assert (await anext(stream)).text == "b"
        await stream.aclose()
        return closed

    assert asyncio.run(asyncio.wait_for(main(), 2)) == [True]
