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
