"""The model engine: mistral.rs (the `mistralrs` wheel) running a GGUF file in this process.

`generate` is blocking and runs on a worker thread, never on the event loop; the wheel releases
the GIL while it waits for the next token. mistral.rs stops a sequence when the receiving end of
its stream is dropped, so closing the generator (or setting `cancelled`) stops generation at the
next token: the engine computes nothing more for a client that left.

One sequence runs at a time: mistral.rs 0.9.5 fails batched prompt steps of GGUF models on CPU
("input tensor is not contiguous"), so the server queues requests instead (see server.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

# mistral.rs logs (Rust tracing) at import; keep its info lines out of our JSON-line logs.
os.environ.setdefault("RUST_LOG", "warn")


@dataclass(frozen=True, slots=True)
class Params:
    """One chat turn, as the engine takes it."""

    messages: tuple[tuple[str, str], ...]  # (role, text): system, user or assistant
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    json_schema: str | None = None  # JSON Schema text the reply must match (grammar-constrained)


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop", "length", ... as the engine names it
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0


Event = Delta | Finish


class EngineError(Exception):
    """The engine refused or failed a request. `invalid`: the request's fault (a schema the
    grammar compiler rejects, a prompt longer than the context), not the engine's."""

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.invalid = invalid


class Engine(Protocol):
    """A loaded model. `generate` blocks; call it from a worker thread."""

    @property
    def model_id(self) -> str: ...

    def generate(self, params: Params, cancelled: threading.Event) -> Generator[Event, None, None]:
        """Deltas, then one Finish. Stops promptly (at the next token) once `cancelled`
        is set or the iterator is closed."""
        ...


# Messages of mistral.rs errors that are the request's fault.
_INVALID_MARKERS = (
    "Invalid grammar",
    "Failed to parse JSON schema",
    "Prompt sequence length is greater than",
    "greater than the model's maximum",
)


def _is_invalid(message: str) -> bool:
    return any(marker in message for marker in _INVALID_MARKERS)


class MistralrsEngine:
    """A GGUF model loaded into mistral.rs (CPU), tokenizer and chat template from the file."""

    def __init__(self, path: str | Path, model_id: str, *, threads: int | None = None) -> None:
        """`threads`: CPU threads of the engine (its rayon pool; default: one per core).
        Fewer than the cores keeps a shared machine responsive: a pool thread that has to
        wait for a core stalls every step of the model."""
        if threads:
            os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when the pool first starts
        import mistralrs  # the `local` extra; imported here so the rest imports without it

        file = Path(path).resolve()
        self._model_id = model_id
        # (The wheel's stubs declare Which.GGUF as a dataclass nested in the enum Which.)
        which = mistralrs.Which.GGUF(
            quantized_model_id=str(file.parent), quantized_filename=file.name
        )
        self._runner = mistralrs.Runner(which=cast(mistralrs.Which, which), max_seqs=1)
        # Runner methods borrow it mutably: two threads calling at once would fail.
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under the model's tokenizer (no special tokens added)."""
        with self._lock:
            return len(self._runner.tokenize_text(text, False, None))

    def generate(self, params: Params, cancelled: threading.Event) -> Generator[Event, None, None]:
        import mistralrs as m

        request = m.ChatCompletionRequest(
            model=self._model_id,
            messages=[{"role": role, "content": text} for role, text in params.messages],
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stream=True,
            grammar=params.json_schema,
            grammar_type="json_schema" if params.json_schema is not None else None,
        )
        try:
            with self._lock:
                stream = self._runner.send_chat_completion_request(request)
        except ValueError as exc:
            raise EngineError(str(exc), invalid=_is_invalid(str(exc))) from None
        if isinstance(stream, m.ChatCompletionResponse):  # only when not streaming
            raise EngineError("the engine answered a streaming request in one piece")
        sent = 0
        try:
            for chunk in stream:
                if cancelled.is_set():
                    return
                choice = chunk.choices[0]
                if choice.delta.content:
                    sent += 1
                    yield Delta(choice.delta.content)
                if choice.finish_reason is not None:
                    usage = chunk.usage
                    details = getattr(usage, "prompt_tokens_details", None)
                    cached = getattr(details, "cached_tokens", 0) or 0
                    yield Finish(
                        reason=choice.finish_reason,
                        input_tokens=usage.prompt_tokens if usage else 0,
                        output_tokens=usage.completion_tokens if usage else sent,
                        cached_input_tokens=int(cached),
                    )
                    return
            raise EngineError("the engine's stream ended without a finish reason")
        except ValueError as exc:
            raise EngineError(str(exc), invalid=sent == 0 and _is_invalid(str(exc))) from None
        finally:
            # Dropping the stream drops the engine's receiver: its next send fails and
            # mistral.rs cancels the sequence. (No other reference to it exists.)
            del stream
