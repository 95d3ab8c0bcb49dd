"""Starting, pinning, waiting for and always stopping the benchmark's processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_CPU, LOAD_CPU = 0, 1
# bench/run.py and bench/profile.py compare per-message costs with the relay floor, and count
# a stream's bytes: their gateway does not coalesce (bench/held.py measures coalescing).
NO_COALESCING = ("--max-hold-ms", "0")


# Autogroup nice of every session started here (bench/held.py --nice): with the kernel's
# autogroup scheduling, a process's nice counts only inside its session, so a shared machine's
# other sessions are weighed against the session's own nice (/proc/PID/autogroup).
SESSION_NICE = {"value": 0}


def _session_nice() -> None:
    """In the child, after setsid: weigh the new session as asked (best effort)."""
    if SESSION_NICE["value"]:
        with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as f:
            f.write(str(SESSION_NICE["value"]))


def missing_tools() -> list[str]:
    return [tool for tool in ("taskset", "wrk") if shutil.which(tool) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


class Processes:
    """Every process started through it runs in its own process group; close() ends them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, cpu: int, argv: list[str], name: str, *, stdout: int | IO[Any] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv],
            cwd=ROOT,
            stdout=log if stdout is None else stdout,
            stderr=log,
            start_new_session=True,
            preexec_fn=_session_nice,
        )
        self._procs.append(proc)
        return proc

    def python(self, cpu: int, module: str, *args: str, name: str) -> subprocess.Popen[bytes]:
        return self.start(cpu, [sys.executable, "-m", module, *args], name)

    def stub(self, cpu: int, port: int, *args: str, name: str = "stub") -> subprocess.Popen[bytes]:
        """`python -m backend_stub`, its per-call log lines off: its core goes to serving."""
        argv = ("--port", str(port), "--log-level", "warning", *args)
        return self.python(cpu, "backend_stub", *argv, name=name)

    def http_server(
        self, cpu: int, kind: str, port: int, backend: str, name: str, *extra: str
    ) -> subprocess.Popen[bytes]:
        """The relay floor (bench.serve) or the gateway (python -m gateway, `extra` its
        further options), on the same uvicorn settings, with per-request log lines off."""
        argv = ("--port", str(port), "--backend", backend)
        if kind == "relay":
            return self.python(cpu, "bench.serve", *argv, name=name)
        quiet = ("--log-level", "warning", "--shutdown-grace", "1")
        return self.python(cpu, "gateway", *argv, *quiet, *extra, name=name)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        if proc in self._procs:
            self._procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


@contextlib.contextmanager
def processes(prefix: str) -> Iterator[Processes]:
    """Processes logging into a temporary directory; all ended on exit. On a failure, each
    log's tail is printed first (the directory is gone afterwards)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        procs = Processes(Path(tmp))
        try:
            yield procs
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-1500:]}")
            raise
        finally:
            procs.close()


def run_json(argv: list[str], cpu: int, timeout: float) -> dict[str, Any]:
    """Run a pinned command to completion; return its last `BENCH_JSON {...}` line."""
    out = subprocess.run(
        ["taskset", "-c", str(cpu), *argv],
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
        preexec_fn=_session_nice,
    )
    lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("BENCH_JSON ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[:4]} failed ({out.returncode}): {out.stderr.decode()[-800:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    return result
