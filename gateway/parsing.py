"""Decoding and translating request bodies without stalling the event loop.

Decoding JSON holds the GIL for the whole call (orjson: about 0.5 s for 32 MB of small
values), so a thread would stall the loop just the same. Bodies up to `inline_bytes` are
decoded and translated in place (a few milliseconds at most); larger ones in a worker
process, which sends back the translated request (a ChatRequest pickles as its wire bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gateway.errors import GatewayError, internal_error
from gateway.http import decode
from gateway.translate.limits import Limits
from runinfra.chat.v1 import chat_service_pb2 as pb


class Translated(Protocol):
    """What the translators return: a ChatRequest and what else the endpoint needs."""

    @property
    def chat(self) -> pb.ChatRequest: ...


T = TypeVar("T", bound=Translated)
Translate = Callable[[Mapping[str, Any], str, Limits], T]

INLINE_BYTES = 64 * 1024


def _run(translate: Translate[T], raw: bytes | bytearray, default_model: str, limits: Limits) -> T:
    return translate(decode(raw), default_model, limits)


def _run_in_child(
    translate: Translate[T], path: str, default_model: str, limits: Limits
) -> tuple[tuple[T, bytes] | None, dict[str, Any] | None]:
    """In the worker: the translation of the body in file `path` (removed once read), its
    messages moved out into a serialized ChatRequest of their own (see Parser.parse); or the
    error's fields (exceptions with keyword arguments do not survive pickling)."""
    gc.disable()  # millions of small containers: no collector passes over them meanwhile
    try:
        raw = Path(path).read_bytes()
        os.unlink(path)
        result = _run(translate, raw, default_model, limits)
        messages = pb.ChatRequest(messages=result.chat.messages).SerializeToString()
        result.chat.ClearField("messages")
        return (result, messages), None
    except GatewayError as exc:
        error = {"status": exc.status, "param": exc.param, "code": exc.code, "type": exc.type}
        return None, {"message": exc.message, **error}
    finally:
        gc.enable()


_SPILL_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None  # memory, where there is one


def _spill(raw: bytes | bytearray) -> str:
    """`raw` in a new private file; its path."""
    fd, path = tempfile.mkstemp(prefix="gateway-body-", dir=_SPILL_DIR)
    with os.fdopen(fd, "wb") as file:
        file.write(raw)
    return path


def _follow_parent(parent: int) -> None:
    """A worker's initializer: exit when the gateway process is gone, however it went (a
    killed parent never tells its pool; the worker would otherwise wait for work forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _ready() -> None:
    """A worker's first task: import the translators before the first body needs them."""
    importlib.import_module("gateway.translate.chat_in")
    importlib.import_module("gateway.translate.responses_in")


class Parser:
    """Translates bodies: inline when small, in `processes` worker processes otherwise."""

    def __init__(self, *, processes: int = 1, inline_bytes: int = INLINE_BYTES) -> None:
        self.processes = processes
        self.inline_bytes = inline_bytes
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the workers now ("spawn": grpc forbids fork), so that the first large body
        does not wait for one to start."""
        self._executor().submit(_ready)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=context,
                initializer=_follow_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def parse(
        self, raw: bytes | bytearray, translate: Translate[T], default_model: str, limits: Limits
    ) -> tuple[T, bytes | None]:
        """The translation, and for a large body its messages already serialized (as a
        ChatRequest of messages only; `chat` then has none): encoding or decoding 32 MiB of
        messages holds the GIL for tens of milliseconds, so the worker encodes them and the
        backend call sends those bytes after the rest (ChatBackend.chat `wire`)."""
        if len(raw) <= self.inline_bytes:
            return _run(translate, raw, default_model, limits), None
        loop = asyncio.get_running_loop()
        # The body goes by file, written on a thread: the write releases the GIL, where
        # pickling it into the worker's pipe would hold it for a copy of the whole body.
        path = await loop.run_in_executor(None, _spill, raw)
        call = functools.partial(_run_in_child, translate, path, default_model, limits)
        try:
            result, error = await loop.run_in_executor(self._executor(), call)
        except BrokenProcessPool:
            self.close()  # a worker died (e.g. out of memory): the next body starts a new one
            raise internal_error() from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # when the worker did not get to it
        if error is not None:
            raise GatewayError(**error)
        assert result is not None
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
