"""Shared helpers for the benchmark: request bodies, /proc sampling, percentiles."""

from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import dataclass, field

# The stub echoes the last user message one word per chunk, so N words in = N chunks out.
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def text_of(words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words))


def body(endpoint: str, words: int, *, stream: bool, model: str = "stub-echo") -> bytes:
    """A POST body for `endpoint` ("responses" or "chat") whose reply is `words` chunks."""
    text = text_of(words)
    if endpoint == "responses":
        payload: dict[str, object] = {"model": model, "input": text, "stream": stream}
    elif endpoint == "chat":
        payload = {"model": model, "messages": [{"role": "user", "content": text}]}
        payload["stream"] = stream
    else:
        raise ValueError(endpoint)
    return json.dumps(payload).encode()


PATHS = {"responses": "/v1/responses", "chat": "/v1/chat/completions"}


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _cpu_ticks() -> dict[str, tuple[int, int, int]]:
    """cpuN -> (process time, irq + softirq time, total) in jiffies, from /proc/stat."""
    out: dict[str, tuple[int, int, int]] = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if not (name.startswith("cpu") and name != "cpu"):
                continue
            user, nice, system, _idle, _iowait, irq, softirq, _steal = map(int, vals[:8])
            out[name] = (user + nice + system, irq + softirq, sum(map(int, vals[:8])))
    return out


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Window:
    """CPU busy % per core and CPU seconds per watched process over a measured window."""

    pids: dict[str, int] = field(default_factory=dict)
    _t0: float = 0.0
    _ticks: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    _proc: dict[str, float] = field(default_factory=dict)

    def start(self) -> Window:
        self._t0 = time.monotonic()
        self._ticks = _cpu_ticks()
        self._proc = {k: proc_cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        """ "elapsed"; "cpu0", "cpu1": busy % of each core (processes + interrupts);
        "proc_pct", "irq_pct": process and (soft)irq time summed over the cores, in % of
        one core; "<name>_cpu_s": CPU seconds of each watched process."""
        ticks = _cpu_ticks()
        result = {"elapsed": time.monotonic() - self._t0, "proc_pct": 0.0, "irq_pct": 0.0}
        for name, (proc, irq, total) in ticks.items():
            p0, i0, t0 = self._ticks[name]
            span = max(1, total - t0)
            result[name] = 100.0 * (proc - p0 + irq - i0) / span
            result["proc_pct"] += 100.0 * (proc - p0) / span
            result["irq_pct"] += 100.0 * (irq - i0) / span
        for k, pid in self.pids.items():
            result[f"{k}_cpu_s"] = proc_cpu_seconds(pid) - self._proc[k]
        return result


def emit(result: dict[str, object]) -> None:
    """Print one machine-readable result line (the runner parses the last one)."""
    print("BENCH_JSON " + json.dumps(result), flush=True)


def wait_quiet(seconds: float) -> bool:
    """Wait up to `seconds` for the cores to be quiet (under 10% busy in processes over a
    quarter second: this machine may be shared); False if they never were."""
    deadline = time.monotonic() + seconds
    while True:
        window = Window().start()
        time.sleep(0.25)
        if window.stop()["proc_pct"] < 10:
            return True
        if time.monotonic() >= deadline:
            return False
