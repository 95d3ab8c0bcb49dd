"""ChatCompletionBuilder's text-delta template makes exactly the bytes encode_data makes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sse import encode_data
from gateway.translate.chat_out import ChatCompletionBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.support import parse_data_frames


@given(
    pieces=st.lists(st.text(min_size=1), min_size=2, max_size=5),
    model=st.text(max_size=10),
    include_usage=st.booleans(),
)
def test_text_template_matches_encode_data(
    pieces: list[str], model: str, include_usage: bool
) -> None:
    b = ChatCompletionBuilder(
        model=model,
        completion_id="chatcmpl-1",
        created=1,
        new_id=lambda p: p,
        include_usage=include_usage,
    )
    frames = b"".join(b.add(pb.ChatChunk(text=p)) for p in pieces)
    chunks = parse_data_frames(frames)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(pieces)
    assert b"".join(encode_data(c) for c in chunks) == frames


def test_interleaved_calls_stream_contiguously_and_reasoning_is_reasoning_content() -> None:
    b = ChatCompletionBuilder(model="m", completion_id="c", created=1, new_id=lambda p: p)

    def call(index: int, arguments: str, name: str = "") -> pb.ChatChunk:
        delta = pb.ToolCallDelta(index=index, arguments=arguments, name=name, id=name)
        return pb.ChatChunk(tool_calls=[delta])

    frames = b.add(pb.ChatChunk(reasoning_text="hmm "))
    frames += b"".join(
        b.add(c) for c in (call(0, '{"a"', "f"), call(1, '{"b"', "g"), call(0, ":1}"))
    )
    frames += b.add(
        pb.ChatChunk(
            tool_calls=[pb.ToolCallDelta(index=1, arguments=":2}")],
            finish_reason=pb.FINISH_REASON_TOOL_CALLS,
        )
    )
    frames += b.finish()
    deltas = [c["choices"][0]["delta"] for c in parse_data_frames(frames)]
    assert deltas[1] == {"reasoning_content": "hmm "}
    order = [e["index"] for d in deltas for e in d.get("tool_calls", [])]
    assert order == [0, 0, 1, 1]
    message = b.body()["choices"][0]["message"]
    assert message["reasoning_content"] == "hmm "
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == ['{"a":1}', '{"b":2}']
