"""Gateway settings: one frozen dataclass, read from the environment or the command line."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass

from gateway.translate.limits import Limits


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _optional_float(value: str | None, default: float | None) -> float | None:
    if value is None or value == "":
        return default
    return float(value) or None


def _optional_int(value: str | None) -> int | None:
    return int(value) if value else None


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
    # Extra attempts of a backend call that fails UNAVAILABLE before its first chunk.
    backend_retries: int = 2
    # API requests in flight at once; 429 beyond. A request takes its slot once its body is in.
    max_in_flight: int = 1024
    # One tenant's share of max_in_flight (None: half of it with API keys, all of it without).
    max_in_flight_per_tenant: int | None = None
    # Seconds a client gets to send a request's body (408 after), and its headers (then closed).
    body_timeout: float = 60.0
    header_timeout: float = 10.0
    # Request limits, each a 400 naming the param: tools, messages (input items), content parts
    # over the whole request, and the serialized JSON schemas (tool parameters, json_schema).
    max_tools: int = 128
    max_messages: int = 2048
    max_content_parts: int = 10_000
    max_schema_bytes: int = 1024 * 1024
    # Accept image URLs naming localhost or loopback, private or link-local addresses.
    allow_private_image_urls: bool = False
    # Accepted API keys (comma-separated in GATEWAY_API_KEYS) and/or a file of keys.
    api_keys: tuple[str, ...] = ()
    api_keys_file: str | None = None
    # Serve without keys on a non-loopback address. Off: such a start is refused.
    allow_unauthenticated_public_bind: bool = False
    # Idempotency-Key results: kept this long; Redis (URL) shares them between processes.
    idempotency_ttl: float = 24 * 3600
    idempotency_max_entries: int = 10_000
    # Bytes of stored replies: in total, per tenant, and the largest reply stored at all.
    idempotency_max_bytes: int = 256 * 1024 * 1024
    idempotency_max_tenant_bytes: int = 64 * 1024 * 1024
    idempotency_max_reply_bytes: int = 4 * 1024 * 1024
    idempotency_redis_url: str | None = None
    # SIGTERM: in-flight requests get this long to finish before they are cancelled.
    shutdown_grace: float = 30.0
    # Under load, the longest (ms) a backend may hold output to send fewer, larger chunks
    # (ChatRequest.max_hold_ms, set from the measured event-loop lag); 0: never coalesce.
    max_hold_ms: int = 100
    # Per-chunk delay of the embedded stub (for demos of streaming).
    stub_chunk_delay: float = 0.0
    # Processes serving the port (uvicorn workers); each has its own channel and stub.
    workers: int = 1
    # Log level of the JSON log lines (debug, info, warning, error).
    log_level: str = "info"

    @property
    def max_message_bytes(self) -> int:
        """gRPC message limit: a request body plus headroom for its protobuf framing."""
        return self.max_body_bytes + 1024 * 1024

    @property
    def tenant_in_flight(self) -> int:
        """One tenant's share of the in-flight cap."""
        if self.max_in_flight_per_tenant is not None:
            return self.max_in_flight_per_tenant
        return max(1, self.max_in_flight // 2) if self.auth_required else self.max_in_flight

    @property
    def limits(self) -> Limits:
        return Limits(
            self.max_tools,
            self.max_messages,
            self.max_content_parts,
            self.max_schema_bytes,
            self.allow_private_image_urls,
        )

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys or self.api_keys_file)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Settings:
        values = json.loads(raw)
        values["api_keys"] = tuple(values.get("api_keys", ()))
        return cls(**values)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        keys = tuple(k.strip() for k in e.get("GATEWAY_API_KEYS", "").split(",") if k.strip())
        return cls(
            host=e.get("GATEWAY_HOST", d.host),
            port=int(e.get("GATEWAY_PORT", d.port)),
            backend=e.get("GATEWAY_BACKEND") or None,
            default_model=e.get("GATEWAY_DEFAULT_MODEL", d.default_model),
            incomplete_as_completed=_flag(e.get("GATEWAY_INCOMPLETE_AS_COMPLETED", "")),
            max_body_bytes=int(e.get("GATEWAY_MAX_BODY_BYTES", d.max_body_bytes)),
            request_timeout=_optional_float(e.get("GATEWAY_REQUEST_TIMEOUT"), d.request_timeout),
            backend_retries=int(e.get("GATEWAY_BACKEND_RETRIES", d.backend_retries)),
            max_in_flight=int(e.get("GATEWAY_MAX_IN_FLIGHT", d.max_in_flight)),
            max_in_flight_per_tenant=_optional_int(e.get("GATEWAY_MAX_IN_FLIGHT_PER_TENANT")),
            body_timeout=float(e.get("GATEWAY_BODY_TIMEOUT", d.body_timeout)),
            header_timeout=float(e.get("GATEWAY_HEADER_TIMEOUT", d.header_timeout)),
            max_tools=int(e.get("GATEWAY_MAX_TOOLS", d.max_tools)),
            max_messages=int(e.get("GATEWAY_MAX_MESSAGES", d.max_messages)),
            max_content_parts=int(e.get("GATEWAY_MAX_CONTENT_PARTS", d.max_content_parts)),
            max_schema_bytes=int(e.get("GATEWAY_MAX_SCHEMA_BYTES", d.max_schema_bytes)),
            allow_private_image_urls=_flag(e.get("GATEWAY_ALLOW_PRIVATE_IMAGE_URLS", "")),
            api_keys=keys,
            api_keys_file=e.get("GATEWAY_API_KEYS_FILE") or None,
            allow_unauthenticated_public_bind=_flag(
                e.get("GATEWAY_ALLOW_UNAUTHENTICATED_PUBLIC_BIND", "")
            ),
            idempotency_ttl=float(e.get("GATEWAY_IDEMPOTENCY_TTL", d.idempotency_ttl)),
            idempotency_max_entries=int(
                e.get("GATEWAY_IDEMPOTENCY_MAX_ENTRIES", d.idempotency_max_entries)
            ),
            idempotency_max_bytes=int(
                e.get("GATEWAY_IDEMPOTENCY_MAX_BYTES", d.idempotency_max_bytes)
            ),
            idempotency_max_tenant_bytes=int(
                e.get("GATEWAY_IDEMPOTENCY_MAX_TENANT_BYTES", d.idempotency_max_tenant_bytes)
            ),
            idempotency_max_reply_bytes=int(
                e.get("GATEWAY_IDEMPOTENCY_MAX_REPLY_BYTES", d.idempotency_max_reply_bytes)
            ),
            idempotency_redis_url=e.get("GATEWAY_IDEMPOTENCY_REDIS_URL") or None,
            shutdown_grace=float(e.get("GATEWAY_SHUTDOWN_GRACE", d.shutdown_grace)),
            max_hold_ms=int(e.get("GATEWAY_MAX_HOLD_MS", d.max_hold_ms)),
            stub_chunk_delay=float(e.get("GATEWAY_STUB_CHUNK_DELAY", d.stub_chunk_delay)),
            workers=int(e.get("GATEWAY_WORKERS", d.workers)),
            log_level=e.get("GATEWAY_LOG_LEVEL", d.log_level),
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def bind_refusal(settings: Settings) -> str | None:
    """Why the gateway must not start on this address, or None. Secure by default:
    without API keys it serves loopback only, unless the loud opt-out is given."""
    if settings.auth_required or is_loopback(settings.host):
        return None
    if settings.allow_unauthenticated_public_bind:
        return None
    return (
        f"refusing to serve {settings.host} without API keys: set GATEWAY_API_KEYS or "
        "GATEWAY_API_KEYS_FILE, bind 127.0.0.1, or pass --allow-unauthenticated-public-bind "
        "(GATEWAY_ALLOW_UNAUTHENTICATED_PUBLIC_BIND=1) to expose an open gateway on purpose"
    )


def workers_refusal(settings: Settings) -> str | None:
    """Why several workers must not start: each would keep its own in-memory idempotency
    store, so a retry reaching another worker would run the request again."""
    if settings.workers <= 1 or settings.idempotency_redis_url:
        return None
    return (
        f"refusing to start {settings.workers} workers with the in-memory idempotency store: "
        "a retry answered by another worker would run again. Set GATEWAY_IDEMPOTENCY_REDIS_URL "
        "(--idempotency-redis-url) to share it, or run one worker"
    )
