"""The SDK ships alone: `sdk/` builds a `runinfra` wheel from the top-level runinfra/ directory,
which installs into a fresh virtualenv with httpx, grpcio and protobuf only, and works there;
and `import runinfra` imports none of the server's dependencies."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_ONLY = ("starlette", "uvicorn", "redis", "prometheus_client", "orjson", "grpc_health", "grpc_reflection")  # fmt: skip

# Run in the fresh virtualenv: import, build both clients, name the error tree, no server deps.
PROBE = f"""
import importlib.util, sys
import runinfra
client = runinfra.RunInfra(base_url="http://127.0.0.1:9/v1")
chat = runinfra.SyncChatClient("127.0.0.1:9")
assert issubclass(runinfra.RateLimitError, runinfra.RunInfraError)
missing = [m for m in {SERVER_ONLY!r} if importlib.util.find_spec(m) is None]
print(client.base_url, sorted(missing) == sorted({SERVER_ONLY!r}), runinfra.__file__)
"""


def python(*args: str, exe: str = sys.executable, cwd: Path = ROOT) -> str:
    result = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_import_runinfra_loads_no_server_dependency_and_grpc_lazily() -> None:
    code = (
        "import sys, runinfra; "
        f"print(sorted(m for m in {SERVER_ONLY!r} + ('grpc',) if m in sys.modules)); "
        "runinfra.ChatClient; print('grpc' in sys.modules)"
    )
    assert python("-c", code).split() == ["[]", "True"]


@pytest.mark.slow
def test_the_sdk_wheel_installs_and_works_alone(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    python("-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT / "sdk"))
    [wheel] = wheels.glob("runinfra-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "runinfra/client.py" in names and "runinfra/chat/v1/chat_service_pb2.py" in names
    assert "runinfra/py.typed" in names and not any(n.startswith("gateway/") for n in names)

    env = tmp_path / "env"
    venv.create(env, with_pip=False)  # the outer pip installs into it (pip --python)
    exe = str(env / "bin" / "python")
    # The wheel by its path (never by name: `runinfra` on PyPI is another project); its
    # dependencies from pip's configured index.
    python("-m", "pip", "--python", exe, "install", "-q", "--only-binary", ":all:", str(wheel))
    # Run outside the checkout, so only the installed package can be imported.
    code = "from importlib.metadata import requires; print(requires('runinfra'))"
    requires = python("-c", code, exe=exe, cwd=tmp_path)
    assert all(dep in requires for dep in ("httpx", "grpcio", "protobuf")), requires
    url, alone, location = python("-c", PROBE, exe=exe, cwd=tmp_path).split()
    assert (url, alone) == ("http://127.0.0.1:9/v1", "True")
    assert Path(location).is_relative_to(env)
