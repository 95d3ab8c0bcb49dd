"""Both idempotency stores, one contract: the in-memory store and a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.idempotency import Claim, IdempotencyStore, MemoryStore, RedisStore, Stored
from tests.support import RedisServer

RESULT = Stored(200, {"content-type": "application/json"}, b'{"ok":true}', "req_1")


def stores(redis_url: str, ttl: float = 60, running_ttl: float = 30) -> dict[str, IdempotencyStore]:
    return {
        "memory": MemoryStore(ttl=ttl, running_ttl=running_ttl),
        "redis": RedisStore(redis_url, ttl=ttl, running_ttl=running_ttl, prefix="test:"),
    }


def each_store(
    redis: RedisServer, test: Callable[[IdempotencyStore], Awaitable[None]], **kw: float
) -> None:
    async def main() -> None:
        for store in stores(redis.url, **kw).values():
            try:
                await test(store)
            finally:
                await store.close()

    asyncio.run(main())


@pytest.fixture()
def redis(redis_server: RedisServer) -> RedisServer:
    import redis as redis_py

    redis_py.Redis.from_url(redis_server.url).flushall()
    return redis_server


def test_claim_complete_replay(redis: RedisServer) -> None:
    async def test(store: IdempotencyStore) -> None:
        assert await store.claim("k", "fp") == (Claim.NEW, None)
        assert await store.claim("k", "fp") == (Claim.IN_PROGRESS, None)
        assert await store.claim("k", "other") == (Claim.MISMATCH, None)
        await store.complete("k", "fp", RESULT)
        assert await store.claim("k", "fp") == (Claim.REPLAY, RESULT)
        assert await store.claim("k", "other") == (Claim.MISMATCH, None)

    each_store(redis, test)


def test_release_lets_a_retry_run(redis: RedisServer) -> None:
    async def test(store: IdempotencyStore) -> None:
        assert (await store.claim("k2", "fp"))[0] is Claim.NEW
        await store.release("k2")
        assert (await store.claim("k2", "fp"))[0] is Claim.NEW

    each_store(redis, test)


def test_entries_expire(redis: RedisServer) -> None:
    async def test(store: IdempotencyStore) -> None:
        assert (await store.claim("k3", "fp"))[0] is Claim.NEW
        await store.complete("k3", "fp", RESULT)
        await asyncio.sleep(0.25)
        assert (await store.claim("k3", "other"))[0] is Claim.NEW

    each_store(redis, test, ttl=0.1, running_ttl=0.1)


def test_memory_store_is_bounded() -> None:
    async def main() -> None:
        store = MemoryStore(ttl=60, running_ttl=60, max_entries=3)
        for i in range(5):
            await store.claim(f"k{i}", "fp")
        assert len(store._entries) == 3
        assert (await store.claim("k0", "other"))[0] is Claim.NEW  # evicted, so free again

    asyncio.run(main())
