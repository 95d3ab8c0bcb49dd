"""ResponseBuilder's delta templates make exactly the bytes encode_event makes of the same event."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.sse import encode_event
from gateway.translate import responses_in
from gateway.translate.responses_out import ResponseBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.support import parse_sse, strict_response

ECHO = responses_in.parse({"model": "m", "input": "x"}, "m").echo


def builder() -> ResponseBuilder:
    ids = iter(f"id_{i}" for i in range(100))
    return ResponseBuilder(
        ECHO, response_id="resp_1", created_at=1, new_id=lambda p: next(ids), completed_at=lambda: 2
    )


@given(pieces=st.lists(st.text(min_size=1), min_size=1, max_size=5))
def test_text_delta_template_matches_encode_event(pieces: list[str]) -> None:
    b = builder()
    frames = b.start() + b"".join(b.add(pb.ChatChunk(text=p)) for p in pieces)
    events = parse_sse(frames)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == pieces
    assert b"".join(encode_event(e) for e in events) == frames


@given(arguments=st.lists(st.text(min_size=1), min_size=1, max_size=4), index=st.integers(0, 3))
def test_arguments_delta_template_matches_encode_event(arguments: list[str], index: int) -> None:
    b = builder()
    first = pb.ToolCallDelta(index=index, id="call_1", name="f", arguments=arguments[0])
    frames = b.start() + b.add(pb.ChatChunk(tool_calls=[first]))
    frames += b"".join(
        b.add(pb.ChatChunk(tool_calls=[pb.ToolCallDelta(index=index, arguments=a)]))
        for a in arguments[1:]
    )
    events = parse_sse(frames)
    assert [
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    ] == arguments
    assert b"".join(encode_event(e) for e in events) == frames


def test_non_streaming_builds_no_frames() -> None:
    b = ResponseBuilder(
        ECHO,
        response_id="r",
        created_at=1,
        new_id=lambda p: p,
        completed_at=lambda: 2,
        streaming=False,
    )
    assert (
        b.start()
        + b.add(pb.ChatChunk(text="hi "))
        + b.add(pb.ChatChunk(text="there", finish_reason=pb.FINISH_REASON_STOP))
        + b.finish()
        == b""
    )
    assert b.body()["output"][0]["content"][0]["text"] == "hi there"
    assert b.body()["status"] == "completed"


@given(pieces=st.lists(st.text(min_size=1), min_size=1, max_size=5))
def test_reasoning_delta_template_matches_encode_event(pieces: list[str]) -> None:
    b = builder()
    frames = b.start() + b"".join(b.add(pb.ChatChunk(reasoning_text=p)) for p in pieces)
    frames += b.add(pb.ChatChunk(text="answer")) + b.finish()
    events = parse_sse(frames)
    deltas = [e for e in events if e["type"] == "response.reasoning_text.delta"]
    assert [d["delta"] for d in deltas] == pieces
    assert b"".join(encode_event(e) for e in events) == frames
    reasoning, message = b.body()["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "".join(pieces)}]
    assert (reasoning["type"], reasoning["summary"], message["type"]) == (
        "reasoning",
        [],
        "message",
    )


def _call(index: int, arguments: str, name: str = "") -> pb.ChatChunk:
    delta = pb.ToolCallDelta(index=index, arguments=arguments, name=name, id=name and f"c{index}")
    return pb.ChatChunk(tool_calls=[delta])


def test_interleaved_calls_come_out_one_item_at_a_time() -> None:
    b = builder()
    chunks = [_call(0, '{"a"', "f"), _call(1, '{"b"', "g"), _call(0, ":1}"), _call(1, ":2}")]
    frames = b.start() + b"".join(b.add(c) for c in chunks) + b.finish()
    events = parse_sse(frames)
    seen = [
        (e["type"].removeprefix("response."), e["output_index"])
        for e in events
        if "output_index" in e
    ]
    assert seen == [
        ("output_item.added", 0),
        ("function_call_arguments.delta", 0),
        ("function_call_arguments.delta", 0),
        ("function_call_arguments.done", 0),
        ("output_item.done", 0),
        ("output_item.added", 1),
        ("function_call_arguments.delta", 1),
        ("function_call_arguments.delta", 1),
        ("function_call_arguments.done", 1),
        ("output_item.done", 1),
    ]
    assert [i["arguments"] for i in b.body()["output"]] == ['{"a":1}', '{"b":2}']
    assert b"".join(encode_event(e) for e in events) == frames


def test_failure_with_a_held_call_lists_only_the_streamed_one() -> None:
    b = builder()
    frames = b.start() + b.add(_call(0, '{"a"', "f")) + b.add(_call(1, "{}", "g"))
    frames += b.fail(GatewayError("boom"))
    events = parse_sse(frames)
    assert events[-1]["type"] == "response.failed"
    [item] = events[-1]["response"]["output"]
    assert (item["name"], item["arguments"], item["status"]) == ("f", '{"a"', "incomplete")
    strict_response(events[-1]["response"])
