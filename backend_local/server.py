"""LocalChatService: the ChatService over a model running in this process, on grpc.aio.

Each Chat runs the engine on a worker thread of its own (engine.py: blocking, GIL released while
the model computes), so the event loop, and with it health checks and ListModels, stays free.
Tokens reach the loop through an asyncio queue. A call that ends early (client gone, deadline)
sets the generation's `cancelled` flag; the thread drops the engine's stream at the next token
and mistral.rs cancels the sequence.

Concurrency: one sequence runs at a time (see engine.py); up to `max_waiting` more wait in
arrival order; beyond that a call fails RESOURCE_EXHAUSTED at once (HTTP 429 at the gateway).
The engine slot is released by the thread when the engine is really done, not when the call
ends, so a cancelled call never overlaps the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from backend_local import gguf, translate
from backend_local.engine import Delta, Engine, EngineError, Event, Finish, Params
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.serving import Served, metadata_of, serve

logger = logging.getLogger("backend_local")

ChatContext = grpc.aio.ServicerContext[pb.ChatRequest, pb.ChatChunk]
DEFAULT_MAX_TOKENS = 1024
DEFAULT_MAX_WAITING = 8


def _log(event: str, **fields: object) -> None:
    logger.info(event, extra={"fields": fields})


@dataclass
class _CallLog:
    """What one Chat call's log line reports."""

    status: str = "ok"
    deltas: int = 0  # text pieces received from the engine
    queue_ms: float | None = None
    ttft_ms: float | None = None
    finish: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class _End:
    """The generation thread finished."""


_END = _End()


class Generation:
    """One engine call on a thread of its own; its events reach the event loop in a queue."""

    def __init__(
        self,
        engine: Engine,
        params: Params,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.params = params
        self.cancelled = threading.Event()
        self._loop = loop
        self._on_done = on_done
        self._queue: asyncio.Queue[Event | Exception | _End] = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name="backend_local-generate")

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self.cancelled.set()

    def _send(self, callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        try:
            with contextlib.closing(self.engine.generate(self.params, self.cancelled)) as events:
                for event in events:
                    if self.cancelled.is_set():
                        break
                    self._send(self._queue.put_nowait, event)
        except Exception as exc:  # handed to the call, which maps it to a status
            self._send(self._queue.put_nowait, exc)
        finally:
            self._send(self._queue.put_nowait, _END)
            self._send(self._on_done)

    async def events(self) -> AsyncGenerator[Event, None]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, Exception):
                raise item
            yield item


class LocalChatService(pb_grpc.ChatServiceServicer):
    """Serves one loaded model: `ListModels` names it, `Chat` runs it."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_waiting: int = DEFAULT_MAX_WAITING,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        template_has_tools: bool = False,
        created: int | None = None,
    ) -> None:
        self.engine = engine
        self.max_in_flight = 1 + max_waiting  # one running, the rest waiting
        self.default_max_tokens = default_max_tokens
        self.template_has_tools = template_has_tools
        self.created = int(time.time()) if created is None else created
        self.in_flight = 0
        self._slot = asyncio.Semaphore(1)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ListModelsResponse:
        _log("list_models", status="ok")
        model = pb.Model(id=self.engine.model_id, created=self.created, owned_by="local")
        return pb.ListModelsResponse(models=[model])

    def _params(self, request: pb.ChatRequest) -> Params:
        return translate.params(
            request,
            model_id=self.engine.model_id,
            default_max_tokens=self.default_max_tokens,
            template_has_tools=self.template_has_tools,
        )

    async def Chat(
        self, request: pb.ChatRequest, context: ChatContext
    ) -> AsyncIterator[pb.ChatChunk]:
        metadata = metadata_of(context)
        rid = request.request_id or metadata.get("x-request-id", "")
        started = time.monotonic()
        call = _CallLog()
        try:
            if request.model != self.engine.model_id:
                call.status = "not_found"
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"model {request.model!r} not found; this backend serves "
                    f"{self.engine.model_id!r}",
                )
            try:
                params = self._params(request)
            except translate.Unsupported as exc:
                call.status = "invalid_argument"
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            if self.in_flight >= self.max_in_flight:
                call.status = "resource_exhausted"
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"backend_local is busy: {self.in_flight} requests running or waiting "
                    f"(at most {self.max_in_flight})",
                )
            self.in_flight += 1
            try:
                async for chunk in self._chat(params, request.buffered, started, call):
                    yield chunk
            except EngineError as exc:
                invalid = exc.invalid and not call.deltas
                code = grpc.StatusCode.INVALID_ARGUMENT if invalid else grpc.StatusCode.INTERNAL
                call.status = code.name.lower()
                await context.abort(code, exc.message)
            finally:
                self.in_flight -= 1
        except (asyncio.CancelledError, GeneratorExit):
            # CancelledError: cancelled while awaiting in here; GeneratorExit: grpc dropped
            # the stream (client gone) while it was sending.
            call.status = "cancelled"
            raise
        finally:
            _log(
                "chat",
                request_id=rid,
                model=request.model,
                ms=round((time.monotonic() - started) * 1000, 1),
                **{k: v for k, v in asdict(call).items() if v is not None},
            )

    async def _chat(
        self, params: Params, buffered: bool, started: float, call: _CallLog
    ) -> AsyncIterator[pb.ChatChunk]:
        await self._slot.acquire()  # FIFO: waiters are woken in arrival order
        call.queue_ms = round((time.monotonic() - started) * 1000, 1)
        generation = Generation(self.engine, params, asyncio.get_running_loop(), self._slot.release)
        generation.start()  # the slot is the thread's now: it releases it when done
        texts: list[str] = []
        try:
            async with contextlib.aclosing(generation.events()) as events:
                async for event in events:
                    if isinstance(event, Delta):
                        if not call.deltas:
                            call.ttft_ms = round((time.monotonic() - started) * 1000, 1)
                        call.deltas += 1
                        if buffered:
                            texts.append(event.text)
                        else:
                            yield pb.ChatChunk(text=event.text)
                    elif isinstance(event, Finish):
                        call.finish = event.reason
                        call.input_tokens = event.input_tokens
                        call.output_tokens = event.output_tokens
                        yield pb.ChatChunk(
                            text="".join(texts),
                            finish_reason=translate.finish_reason(event.reason),
                            usage=pb.Usage(
                                input_tokens=event.input_tokens,
                                output_tokens=event.output_tokens,
                                cached_input_tokens=event.cached_input_tokens,
                            ),
                        )
        finally:
            generation.cancel()  # a no-op when the engine is done already


RunningLocal = Served[LocalChatService]


def default_model_id(path: str | Path) -> str:
    """The file's name without `.gguf`: SmolLM2-135M-Instruct.Q4_1."""
    return Path(path).name.removesuffix(".gguf")


async def start(
    model_path: str | Path,
    *,
    model_id: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    max_waiting: int = DEFAULT_MAX_WAITING,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    max_message_bytes: int = 64 * 1024 * 1024,
    threads: int | None = None,
    engine: Engine | None = None,
) -> RunningLocal:
    """Load the model (off the event loop) and serve it; port 0 picks a free port.
    `engine` replaces the mistral.rs engine (tests)."""
    metadata = gguf.read_metadata(model_path, wanted=("general.name", "tokenizer.chat_template"))
    model_id = model_id or default_model_id(model_path)
    if engine is None:
        from backend_local.engine import MistralrsEngine

        loading = time.monotonic()
        engine = await asyncio.to_thread(MistralrsEngine, model_path, model_id, threads=threads)
        _log("model_loaded", model=model_id, s=round(time.monotonic() - loading, 2))
    service = LocalChatService(
        engine,
        max_waiting=max_waiting,
        default_max_tokens=default_max_tokens,
        template_has_tools=gguf.template_supports_tools(metadata.chat_template),
    )
    served = await serve(service, host, port, max_message_bytes=max_message_bytes)
    _log("listening", host=host, port=served.port, model=model_id, name=metadata.name)
    return served
