from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from tests.support import RedisServer, Servers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", help="rewrite tests/golden outputs")


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    s.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture()
def client(servers: Servers) -> Iterator[OpenAI]:
    """The official SDK against the session's gateway."""
    with OpenAI(base_url=servers.url + "/v1", api_key="unused", max_retries=0, timeout=30) as c:
        yield c
