"""Replay-safe retries: the Idempotency-Key flow (`run_once`), and its stores (in-memory and
Redis) behind one interface.

Semantics follow the IETF idempotency-key draft: the first request with a key
claims it and runs; a retry with the same key and body gets the stored result;
the same key with another body is a mismatch (422); a retry while the first
still runs is a conflict (409). Callers scope keys (tenant, route) before use.
"""

from __future__ import annotations

import base64
import enum
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.errors import GatewayError, InvalidRequest


class Claim(enum.Enum):
    NEW = "new"  # the caller runs the request, then complete()s or release()s the key
    REPLAY = "replay"  # a stored result is returned
    MISMATCH = "mismatch"  # same key, different request body
    IN_PROGRESS = "in_progress"  # the first request is still running


@dataclass(frozen=True, slots=True)
class Stored:
    """A completed response, as it will be replayed."""

    status: int
    headers: dict[str, str]
    body: bytes
    request_id: str

    def to_json(self, fingerprint: str) -> bytes:
        return orjson.dumps(
            {
                "fp": fingerprint,
                "status": self.status,
                "headers": self.headers,
                "body": base64.b64encode(self.body).decode(),
                "request_id": self.request_id,
            }
        )

    @staticmethod
    def from_json(data: dict[str, Any]) -> Stored:
        return Stored(
            data["status"], data["headers"], base64.b64decode(data["body"]), data["request_id"]
        )


class IdempotencyStore(Protocol):
    max_reply_bytes: int  # larger replies are answered and not stored

    async def claim(self, key: str, fingerprint: str) -> tuple[Claim, Stored | None]: ...
    async def complete(self, key: str, fingerprint: str, result: Stored) -> None: ...
    async def release(self, key: str) -> None: ...
    async def close(self) -> None: ...


# Completed work is stored; transient failures are retried for real, never replayed.
_STORED_STATUSES = range(200, 500)
_TRANSIENT = frozenset({408, 409, 429, 499})


def scoped_key(tenant: str, path: str, key: str) -> str:
    """The store's key for a client's Idempotency-Key: per tenant and route. 400 if malformed."""
    if not 0 < len(key) <= 255:
        raise InvalidRequest("Idempotency-Key must be 1-255 characters.", param="Idempotency-Key")
    return f"{tenant}:{path}:{key}"


async def run_once(
    store: IdempotencyStore, key: str, fingerprint: str, run: Callable[[], Awaitable[Stored]]
) -> tuple[Stored, bool]:
    """The IETF idempotency-key draft: the first request with `key` runs; a retry with the
    same fingerprint gets the stored result (`True`: replayed); another fingerprint is a 422,
    and a retry while the first still runs a 409. A run that raises frees the key."""
    claim, stored = await store.claim(key, fingerprint)
    if claim is Claim.MISMATCH:
        raise GatewayError(
            "This Idempotency-Key was used with a different request body; use a new key.",
            status=422,
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    if claim is Claim.IN_PROGRESS:
        raise GatewayError(
            "A request with this Idempotency-Key is still running; retry when it is done.",
            status=409,
            param="Idempotency-Key",
            code="idempotency_key_in_use",
            headers={"retry-after": "1"},
        )
    if stored is not None:
        return stored, True
    try:
        result = await run()
    except BaseException:
        await store.release(key)
        raise
    storable = result.status in _STORED_STATUSES and result.status not in _TRANSIENT
    if storable and len(result.body) <= store.max_reply_bytes:
        await store.complete(key, fingerprint, result)
    else:
        await store.release(key)
    return result, False


def _size(result: Stored | None) -> int:
    """About the memory a stored result holds."""
    if result is None:
        return 0
    return len(result.body) + sum(len(k) + len(v) for k, v in result.headers.items()) + 256


def _tenant(key: str) -> str:
    return key.split(":", 1)[0]  # scoped_key puts the tenant first


class MemoryStore:
    """One process: a dict with per-entry expiry, bounded by entries and by bytes of stored
    replies, in total and per tenant (least recently used go first; a tenant over its share
    loses its own oldest entries)."""

    def __init__(
        self,
        *,
        ttl: float,
        running_ttl: float,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_tenant_bytes: int = 64 * 1024 * 1024,
        max_reply_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._ttl = ttl
        self._running_ttl = running_ttl
        self._max = max_entries
        self._max_bytes = max_bytes
        self._max_tenant_bytes = max_tenant_bytes
        self.max_reply_bytes = max_reply_bytes
        self.bytes = 0
        self.tenant_bytes: dict[str, int] = {}
        # key -> (expires_at, fingerprint, result or None while running)
        self._entries: OrderedDict[str, tuple[float, str, Stored | None]] = OrderedDict()

    def _put(self, key: str, entry: tuple[float, str, Stored | None]) -> None:
        self._pop(key)
        self._entries[key] = entry
        size, tenant = _size(entry[2]), _tenant(key)
        self.bytes += size
        self.tenant_bytes[tenant] = self.tenant_bytes.get(tenant, 0) + size

    def _pop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        size, tenant = _size(entry[2]), _tenant(key)
        self.bytes -= size
        held = self.tenant_bytes.pop(tenant, 0) - size
        if held > 0:
            self.tenant_bytes[tenant] = held

    def _evict(self, tenant: str) -> None:
        """Oldest first: until the tenant is within its share, then until all fit."""
        while self.tenant_bytes.get(tenant, 0) > self._max_tenant_bytes:
            self._pop(next(k for k in self._entries if _tenant(k) == tenant))
        while len(self._entries) > self._max or self.bytes > self._max_bytes:
            self._pop(next(iter(self._entries)))

    async def claim(self, key: str, fingerprint: str) -> tuple[Claim, Stored | None]:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            self._put(key, (now + self._running_ttl, fingerprint, None))
            self._evict(_tenant(key))
            return Claim.NEW, None
        _, stored_fp, result = entry
        if stored_fp != fingerprint:
            return Claim.MISMATCH, None
        if result is None:
            return Claim.IN_PROGRESS, None
        return Claim.REPLAY, result

    async def complete(self, key: str, fingerprint: str, result: Stored) -> None:
        self._put(key, (time.monotonic() + self._ttl, fingerprint, result))
        self._evict(_tenant(key))

    async def release(self, key: str) -> None:
        self._pop(key)

    async def close(self) -> None:
        self._entries.clear()
        self.tenant_bytes.clear()
        self.bytes = 0


class RedisStore:
    """Several gateway processes or hosts: one Redis, SET NX for the claim, PX for expiry."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        running_ttl: float,
        prefix: str = "gw:idem:",
        max_reply_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        import redis.asyncio as redis  # only needed when this store is configured

        self.max_reply_bytes = max_reply_bytes
        self._redis = redis.Redis.from_url(url)
        self._ttl_ms = int(ttl * 1000)
        self._running_ms = int(running_ttl * 1000)
        self._prefix = prefix

    async def claim(self, key: str, fingerprint: str) -> tuple[Claim, Stored | None]:
        name = self._prefix + key
        running = orjson.dumps({"fp": fingerprint})
        for _ in range(3):  # the entry may expire between SET NX and GET
            if await self._redis.set(name, running, nx=True, px=self._running_ms):
                return Claim.NEW, None
            raw = await self._redis.get(name)
            if raw is None:
                continue
            data = orjson.loads(raw)
            if data["fp"] != fingerprint:
                return Claim.MISMATCH, None
            if "status" not in data:
                return Claim.IN_PROGRESS, None
            return Claim.REPLAY, Stored.from_json(data)
        return Claim.IN_PROGRESS, None

    async def complete(self, key: str, fingerprint: str, result: Stored) -> None:
        await self._redis.set(self._prefix + key, result.to_json(fingerprint), px=self._ttl_ms)

    async def release(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()
