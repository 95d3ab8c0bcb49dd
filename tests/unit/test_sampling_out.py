"""Logprobs and n choices on the reply side: the builders' frames equal the general encoders',
ChoicesBuilder merges choices and their usage, and gateway.fanout merges and cancels calls."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_stub.behaviour import token_logprob
from gateway import fanout
from gateway.errors import BackendError
from gateway.sse import DONE, encode_data, encode_event
from gateway.translate import responses_in
from gateway.translate.chat_out import ChatCompletionBuilder
from gateway.translate.choices import ChoicesBuilder
from gateway.translate.responses_out import ResponseBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.support import parse_data_frames, parse_sse, strict_chat_chunk, strict_event

ECHO = responses_in.parse({"model": "m", "input": "x", "top_logprobs": 2}, "m").echo
words = st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=4)


def chunk(text: str, top: int = 2, **fields: Any) -> pb.ChatChunk:
    return pb.ChatChunk(text=text, logprobs=[token_logprob(text, top)], **fields)


@given(pieces=words)
def test_responses_logprob_deltas_match_encode_event(pieces: list[str]) -> None:
    ids = iter(f"id_{i}" for i in range(100))
    b = ResponseBuilder(
        ECHO, response_id="r", created_at=1, new_id=lambda p: next(ids), completed_at=lambda: 2,
        logprobs=True,
    )  # fmt: skip
    frames = b.start() + b"".join(b.add(chunk(p)) for p in pieces) + b.finish()
    events = parse_sse(frames)
    for event in events:
        strict_event(event)
    assert b"".join(encode_event(e) for e in events) == frames
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [[lp["token"] for lp in d["logprobs"]] for d in deltas] == [[p] for p in pieces]
    part = b.body()["output"][0]["content"][0]
    assert [lp["bytes"] for lp in part["logprobs"]] == [list(p.encode()) for p in pieces]


@given(pieces=words, index=st.integers(0, 7), logprobs=st.booleans())
def test_chat_choice_frames_match_encode_data(
    pieces: list[str], index: int, logprobs: bool
) -> None:
    b = ChatCompletionBuilder(
        model="m", completion_id="c", created=1, new_id=lambda p: p, index=index, logprobs=logprobs
    )
    frames = b"".join(b.add(chunk(p)) for p in pieces) + b.finish()
    chunks = parse_data_frames(frames)
    for c in chunks:
        strict_chat_chunk(c)
    assert {c["choices"][0]["index"] for c in chunks} == {index}
    assert b"".join(encode_data(c) for c in chunks) + DONE == frames
    texts = [c for c in chunks if c["choices"][0]["delta"].get("content")]
    assert all((c["choices"][0]["logprobs"] is not None) == logprobs for c in texts)
    assert (b.body()["choices"][0]["logprobs"] is not None) == logprobs


def choices(n: int, streaming: bool, include_usage: bool = True) -> ChoicesBuilder:
    ids = itertools.count()
    builders = [
        ChatCompletionBuilder(
            model="m", completion_id="c", created=1, new_id=lambda p: f"{p}{next(ids)}",
            include_usage=include_usage, streaming=streaming, index=i,
        )
        for i in range(n)
    ]  # fmt: skip
    return ChoicesBuilder(builders, include_usage=include_usage, streaming=streaming)


def last(text: str, prompt: int, output: int) -> pb.ChatChunk:
    usage = pb.Usage(input_tokens=prompt, output_tokens=output, cached_input_tokens=1)
    return pb.ChatChunk(text=text, finish_reason=pb.FINISH_REASON_STOP, usage=usage)


def test_choices_stream_ends_with_each_finish_then_one_summed_usage() -> None:
    b = choices(2, streaming=True)
    frames = b.start() + b.add((1, pb.ChatChunk(text="b "))) + b.add((0, pb.ChatChunk(text="a ")))
    frames += b.add((1, last("bb", 3, 2))) + b.add((0, pb.ChatChunk(text="aa")))
    frames += b.finish()
    assert frames.endswith(DONE) and frames.count(DONE) == 1
    chunks = parse_data_frames(frames)
    for c in chunks:
        strict_chat_chunk(c)
    *per_choice, usage = chunks
    assert [c["choices"][0]["index"] for c in per_choice] == [1, 1, 0, 0, 1, 0, 0]
    assert [c["choices"][0]["finish_reason"] for c in per_choice][-2:] == [None, "stop"]
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 3  # choice 0 reported none
    assert usage["usage"]["prompt_tokens_details"]["cached_tokens"] == 1


def test_choices_body_lists_choices_in_order_and_sums_the_completions_usage() -> None:
    b = choices(3, streaming=False)
    for index in (2, 0, 1):
        assert b.add((index, last(f"reply {index}", 4, index + 1))) == b""
    assert b.finish() == b""
    body = b.body()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in body["choices"]] == ["reply 0", "reply 1", "reply 2"]
    usage = body["usage"]
    # One prompt (counted once), three completions (summed).
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (4, 6, 10)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 1


# --- gateway.fanout -------------------------------------------------------------------------


class Call:
    """A backend call stand-in: yields `items` (`delay` s apart), then raises `error` if any;
    records whether it was cancelled."""

    def __init__(self, items: int, delay: float = 0.0, error: Exception | None = None) -> None:
        self.items, self.delay, self.error = items, delay, error
        self.cancelled = False

    async def stream(self) -> AsyncIterator[str]:
        try:
            for i in range(self.items):
                await asyncio.sleep(self.delay)
                yield f"item {i}"
            if self.error is not None:
                raise self.error
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def drain(merged: AsyncIterator[tuple[int, str]]) -> list[tuple[int, str]]:
    return [pair async for pair in merged]


def test_merge_interleaves_tagged_items() -> None:
    calls = [Call(3, 0.01), Call(3, 0.01)]
    got = asyncio.run(drain(fanout.merge([c.stream() for c in calls])))
    assert sorted(got) == [(i, f"item {k}") for i in (0, 1) for k in range(3)]
    assert [i for i, _ in got] != [0, 0, 0, 1, 1, 1]


def test_merge_one_failure_before_its_first_chunk_cancels_the_others() -> None:
    calls = [Call(100, 0.01), Call(0, error=BackendError("UNAVAILABLE", "down")), Call(100, 0.01)]

    async def run() -> None:
        with pytest.raises(BackendError):
            await drain(fanout.merge([c.stream() for c in calls]))

    asyncio.run(asyncio.wait_for(run(), 5))
    assert [c.cancelled for c in calls] == [True, False, True]


def test_closing_the_merge_cancels_every_call() -> None:
    calls = [Call(100, 0.01) for _ in range(3)]

    async def run() -> None:
        merged = fanout.merge([c.stream() for c in calls])
        await anext(merged)
        await merged.aclose()  # type: ignore[attr-defined]

    asyncio.run(asyncio.wait_for(run(), 5))
    assert all(c.cancelled for c in calls)
