"""Golden files for the /v1/responses translators.

Each case in tests/golden/responses/<case>/ has request.json and, as input,
chunks.json (the backend's stream; written from the stub's own plan when absent,
and may end with {"error": ...}). The outputs are chat_request.json, events.sse
and response.json. `pytest --update-goldens` rewrites outputs; review the diff.
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
from gateway.pb import chat_service_pb2 as pb
from gateway.sse import encode_event
from gateway.translate import responses_in
from gateway.translate.responses_out import Event, ResponseBuilder
from tests.support import strict_event, strict_response

GOLDEN = Path(__file__).parent.parent / "golden" / "responses"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def counter_ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter):04d}"


def load_chunks(case: Path, chat: pb.ChatRequest, update: bool) -> list[dict[str, Any]]:
    path = case / "chunks.json"
    if not path.exists() and update:
        chunks = [json_format.MessageToDict(c) for c in behaviour.plan(chat).chunks]
        path.write_text(json.dumps(chunks, indent=2) + "\n")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def run_builder(
    echo: dict[str, Any], chunks: list[dict[str, Any]]
) -> tuple[list[Event], ResponseBuilder]:
    builder = ResponseBuilder(
        echo, response_id="resp_0000", created_at=1_700_000_000, new_id=counter_ids(),
        completed_at=lambda: 1_700_000_001,
    )  # fmt: skip
    events = builder.start()
    for raw in chunks:
        if "error" in raw:
            error = BackendError(raw["error"]["grpc_code"], raw["error"]["message"])
            return events + builder.fail(error.message), builder
        events += builder.add(json_format.ParseDict(raw, pb.ChatChunk()))
    return events + builder.finish(), builder


def check(path: Path, actual: str, update: bool) -> None:
    if update:
        path.write_text(actual)
    assert path.exists(), f"{path} missing: run pytest --update-goldens"
    assert actual == path.read_text(), f"{path} differs (pytest --update-goldens, then review)"


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, request: pytest.FixtureRequest) -> None:
    update = bool(request.config.getoption("--update-goldens"))
    folder = GOLDEN / case
    parsed = responses_in.parse(json.loads((folder / "request.json").read_text()), "stub-echo")
    chat_json = json_format.MessageToDict(parsed.chat, preserving_proto_field_name=True)
    check(folder / "chat_request.json", json.dumps(chat_json, indent=2) + "\n", update)

    events, builder = run_builder(parsed.echo, load_chunks(folder, parsed.chat, update))
    for event in events:
        strict_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"] == builder.response()  # the streamed envelope IS the body
    strict_response(builder.response())
    check(folder / "events.sse", b"".join(encode_event(e) for e in events).decode(), update)
    check(folder / "response.json", json.dumps(builder.response(), indent=2) + "\n", update)
