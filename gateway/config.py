"""Gateway settings: one frozen dataclass, read from the environment or the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    # host:port of a ChatService (or any gRPC target, e.g. dns:///svc:50051).
    # None starts the stub backend in-process on a loopback port.
    backend: str | None = None
    # What `model: "default"` resolves to.
    default_model: str = "stub-echo"
    # End truncated streams with response.completed (status "incomplete") instead
    # of response.incomplete, for clients that only accept response.completed.
    incomplete_as_completed: bool = False
    # Largest request body accepted; gRPC message limits are raised to match.
    max_body_bytes: int = 32 * 1024 * 1024
    # Deadline for one backend call, in seconds (None: no deadline).
    request_timeout: float | None = 600.0
    # Per-chunk delay of the embedded stub (for demos of streaming).
    stub_chunk_delay: float = 0.0

    @property
    def max_message_bytes(self) -> int:
        """gRPC message limit: a request body plus headroom for its protobuf framing."""
        return self.max_body_bytes + 1024 * 1024

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        timeout = e.get("GATEWAY_REQUEST_TIMEOUT")
        return cls(
            host=e.get("GATEWAY_HOST", d.host),
            port=int(e.get("GATEWAY_PORT", d.port)),
            backend=e.get("GATEWAY_BACKEND") or None,
            default_model=e.get("GATEWAY_DEFAULT_MODEL", d.default_model),
            incomplete_as_completed=_flag(e.get("GATEWAY_INCOMPLETE_AS_COMPLETED", "")),
            max_body_bytes=int(e.get("GATEWAY_MAX_BODY_BYTES", d.max_body_bytes)),
            request_timeout=(float(timeout) or None) if timeout else d.request_timeout,
            stub_chunk_delay=float(e.get("GATEWAY_STUB_CHUNK_DELAY", d.stub_chunk_delay)),
        )
