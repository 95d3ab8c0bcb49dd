"""Golden files for the pure translators of both endpoints.

Each case in tests/golden/<endpoint>/<case>/ has request.json and, as input,
chunks.json (the backend's stream; written from the stub's own plan when absent,
and may end with {"error": ...}). The outputs are chat_request.json, the wire
frames (events.sse or frames.sse) and the final body (response.json or
completion.json). Every event, chunk and body is validated strictly against the
SDK's types. `pytest --update-goldens` rewrites outputs; review the diff.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from backend_stub import behaviour
from gateway.errors import BackendError
from gateway.translate import chat_in, responses_in
from gateway.translate.chat_out import ChatCompletionBuilder
from gateway.translate.responses_out import ResponseBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.support import (
    parse_data_frames,
    parse_sse,
    strict_chat_chunk,
    strict_chat_completion,
    strict_event,
    strict_response,
)

GOLDEN = Path(__file__).parent.parent / "golden"


def cases(endpoint: str) -> list[str]:
    return sorted(p.name for p in (GOLDEN / endpoint).iterdir() if p.is_dir())


def counter_ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter):04d}"


def load_chunks(case: Path, chat: pb.ChatRequest, update: bool) -> list[dict[str, Any]]:
    path = case / "chunks.json"
    if not path.exists() and update:
        chunks = [json_format.MessageToDict(c) for c in behaviour.plan(chat).chunks]
        path.write_text(json.dumps(chunks, indent=2) + "\n")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def backend_error(raw: dict[str, Any]) -> BackendError:
    return BackendError(raw["error"]["grpc_code"], raw["error"]["message"])


def check(path: Path, actual: str, update: bool) -> None:
    if update:
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run pytest --update-goldens"
    assert actual == path.read_text(), f"{path} differs (pytest --update-goldens, then review)"


def check_chat_request(folder: Path, chat: pb.ChatRequest, update: bool) -> None:
    as_json = json_format.MessageToDict(chat, preserving_proto_field_name=True)
    check(folder / "chat_request.json", json.dumps(as_json, indent=2) + "\n", update)


@pytest.fixture()
def update(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def fold_responses(
    echo: dict[str, Any], chunks: list[dict[str, Any]], streaming: bool, logprobs: bool
) -> tuple[bytes, ResponseBuilder]:
    builder = ResponseBuilder(
        echo, response_id="resp_0000", created_at=1_700_000_000, new_id=counter_ids(),
        completed_at=lambda: 1_700_000_001, streaming=streaming, logprobs=logprobs,
    )  # fmt: skip
    frames = builder.start()
    for raw in chunks:
        if "error" in raw:
            return frames + builder.fail(backend_error(raw)), builder
        frames += builder.add(json_format.ParseDict(raw, pb.ChatChunk()))
    return frames + builder.finish(), builder


@pytest.mark.parametrize("case", cases("responses"))
def test_responses(case: str, update: bool) -> None:
    folder = GOLDEN / "responses" / case
    parsed = responses_in.parse(json.loads((folder / "request.json").read_text()), "stub-echo")
    check_chat_request(folder, parsed.chat, update)
    chunks = load_chunks(folder, parsed.chat, update)
    frames, builder = fold_responses(parsed.echo, chunks, True, parsed.chat.logprobs)
    events = parse_sse(frames)
    for event in events:
        strict_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"] == builder.body()  # the streamed envelope IS the body
    quiet, unary = fold_responses(parsed.echo, chunks, False, parsed.chat.logprobs)
    assert quiet == b"" and unary.body() == builder.body()  # non-streaming: same body
    strict_response(builder.body())
    check(folder / "events.sse", frames.decode(), update)
    check(folder / "response.json", json.dumps(builder.body(), indent=2) + "\n", update)


@pytest.mark.parametrize("case", cases("chat"))
def test_chat(case: str, update: bool) -> None:
    folder = GOLDEN / "chat" / case
    parsed = chat_in.parse(json.loads((folder / "request.json").read_text()), "stub-echo")
    check_chat_request(folder, parsed.chat, update)
    builder = ChatCompletionBuilder(
        model=parsed.chat.model, completion_id="chatcmpl-0000", created=1_700_000_000,
        new_id=counter_ids(), include_usage=parsed.include_usage, logprobs=parsed.chat.logprobs,
    )  # fmt: skip
    frames = b""
    for raw in load_chunks(folder, parsed.chat, update):
        if "error" in raw:
            frames += builder.fail(backend_error(raw))
            break
        frames += builder.add(json_format.ParseDict(raw, pb.ChatChunk()))
    else:
        frames += builder.finish()
    chunks = parse_data_frames(frames)
    for chunk in chunks:
        if "error" not in chunk:
            strict_chat_chunk(chunk)
    strict_chat_completion(builder.body())
    check(folder / "frames.sse", frames.decode(), update)
    check(folder / "completion.json", json.dumps(builder.body(), indent=2) + "\n", update)
