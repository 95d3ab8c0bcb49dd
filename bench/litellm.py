"""`python bench/litellm.py [--quick]`: streaming words per front-end core, gateway vs LiteLLM.

The same streaming workload against three front ends, each alone on CPU 0, in one run, their
repetitions interleaved: the gateway as `python -m gateway` runs by default (adaptive
coalescing on), the gateway with `--max-hold-ms 0`, and the LiteLLM proxy (`litellm[proxy]`,
in its own virtualenv: LITELLM_VENV, default /tmp/litellm-venv; the run is skipped with how to
create it when it is missing). Workload: `POST /v1/chat/completions`, `stream: true`, model
`stub-echo`, a 256-word reply, 32 connections each streaming one reply after another
(`bench/http_client.py paced`: one asyncio process, raw sockets, words and SSE frames counted
inside the window). Upstreams on CPU 1 with the client: the gateway's is the stub over gRPC
(`python -m backend_stub`); LiteLLM's is `bench/openai_upstream.py`, which streams the stub's
same 256 one-word chunk frames, pre-built. The figure: words per second per front-end
core-second (streams/s x 256 words ÷ the front end's CPU). Writes its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import raise_fd_limit, wait_quiet
from bench.procs import (
    GATEWAY_CPU,
    LOAD_CPU,
    SESSION_NICE,
    Processes,
    free_port,
    processes,
    run_json,
    wait_port,
)
from bench.report import LITELLM_HEADING, splice_section

PY = sys.executable
VENV = Path(os.environ.get("LITELLM_VENV", "/tmp/litellm-venv"))
VERSION = "1.108.7"
WORDS, CONNECTIONS = 256, 32
# name -> label
TARGETS = {
    "coalescing": "gateway (coalescing, default)",
    "plain": "gateway, --max-hold-ms 0",
    "litellm": "LiteLLM proxy",
}
CREATE = f"python3 -m venv {VENV} && {VENV}/bin/pip install 'litellm[proxy]=={VERSION}'"
CONFIG = """model_list:
  - model_name: stub-echo
    litellm_params:
      model: openai/stub-echo
      api_base: http://127.0.0.1:{port}/v1
      api_key: bench
general_settings:
  dangerously_permit_weak_or_unset_master_key: true  # no auth, as the gateway without keys
"""


def litellm_version() -> str:
    out = subprocess.run(
        [
            str(VENV / "bin/python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        check=False,
    )
    return out.stdout.decode().strip() or "unknown"


class Run:
    def __init__(self, args: argparse.Namespace, procs: Processes) -> None:
        self.args, self.procs = args, procs
        self.servers: dict[str, tuple[int, int, int]] = {}  # name -> port, pid, upstream pid
        self.results: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
        self.busy = 0

    def start(self) -> None:
        stub_port, up_port = free_port(), free_port()
        stub = self.procs.stub(LOAD_CPU, stub_port)
        upstream = self.procs.python(
            LOAD_CPU, "bench.openai_upstream", "--port", str(up_port), name="upstream"
        )
        wait_port(stub_port, stub)
        wait_port(up_port, upstream)
        for name, extra in (("coalescing", ()), ("plain", ("--max-hold-ms", "0"))):
            port = free_port()
            proc = self.procs.http_server(
                GATEWAY_CPU, "gateway", port, f"127.0.0.1:{stub_port}", name, *extra
            )
            wait_port(port, proc)
            self.servers[name] = (port, proc.pid, stub.pid)
        config = self.procs.log_dir / "litellm.yaml"
        config.write_text(CONFIG.format(port=up_port))
        port = free_port()
        argv = [str(VENV / "bin/litellm"), "--config", str(config), "--host", "127.0.0.1"]
        proc = self.procs.start(GATEWAY_CPU, [*argv, "--port", str(port)], "litellm")
        wait_port(port, proc, timeout=120)  # its imports take a while
        self.servers["litellm"] = (port, proc.pid, upstream.pid)

    def run(self, name: str, warmup: float, seconds: float) -> dict[str, Any]:
        port, pid, upstream = self.servers[name]
        argv = [PY, "-m", "bench.http_client", "paced", "--port", str(port)]
        argv += ["--endpoint", "chat", "--words", str(WORDS), "--count", str(CONNECTIONS)]
        argv += ["--spread", "0.5", "--warmup", str(warmup), "--duration", str(seconds)]
        argv += ["--open-timeout", "60", "--server-pid", str(pid), "--stub-pid", str(upstream)]
        return run_json(argv, LOAD_CPU, timeout=warmup + seconds + 120)

    def sweep(self) -> None:
        for name in TARGETS:  # warm-up: imports, caches, connection pools
            self.run(name, 1.0, 2.0)
        for rep in range(self.args.reps):
            for name in TARGETS:
                self.busy += not wait_quiet(self.args.settle)
                r = derive(self.run(name, self.args.warmup, self.args.seconds))
                self.results[name].append(r)
                print(f"rep {rep + 1} {name}: {short(r)}", flush=True)


def derive(r: dict[str, Any]) -> dict[str, Any]:
    """Add the figures of the table to one client result."""
    el = r["elapsed"]
    fe_cores = r["server_cpu_s"] / el
    r["requests_per_s"] = r["completed"] / el
    r["streams_per_s"] = r["tokens_per_s"] / WORDS
    r["words_per_core_s"] = r["tokens_per_s"] / fe_cores if fe_cores else 0.0
    r["fe_pct"], r["up_pct"] = 100 * fe_cores, 100 * r["stub_cpu_s"] / el
    r["client_pct"] = 100 * r["loadgen_cpu_s"] / el
    ours = r["server_cpu_s"] + r["stub_cpu_s"] + r["loadgen_cpu_s"]
    r["other_pct"] = max(0.0, r["proc_pct"] - 100 * ours / el)
    return r


def short(r: dict[str, Any]) -> str:
    keys = ("requests_per_s", "streams_per_s", "frames_per_s", "words_per_core_s", "fe_pct")
    return ", ".join(f"{k} {r[k]:,.1f}" for k in keys) + f", errors {r['errors']}"


def spread(values: list[float], digits: int = 0) -> str:
    return (
        f"{statistics.median(values):,.{digits}f} "
        f"({min(values):,.{digits}f}-{max(values):,.{digits}f})"
    )


HEAD = (
    "| front end (CPU 0) | requests/s | streams/s | delta events/s | words/event "
    "| words/s per front-end core-s | front end % | upstream % | client % | CPU0 / CPU1 busy % "
    "| other % | errors |\n" + "|---" * 12 + "|"
)


def table_row(name: str, rs: list[dict[str, Any]]) -> str:
    med = {
        k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], float | int)
    }
    cells = [
        TARGETS[name],
        spread([r["requests_per_s"] for r in rs], 1),
        spread([r["streams_per_s"] for r in rs], 1),
        spread([r["frames_per_s"] for r in rs]),
        f"{med['words_per_event']:.1f}",
        spread([r["words_per_core_s"] for r in rs]),
        f"{med['fe_pct']:.0f}",
        f"{med['up_pct']:.0f}",
        f"{med['client_pct']:.0f}",
        f"{med['cpu0']:.0f} / {med['cpu1']:.0f}",
        f"{med['other_pct']:.0f}",
        f"{sum(r['errors'] for r in rs)}",
    ]
    return "| " + " | ".join(cells) + " |"


def ratios(results: dict[str, list[dict[str, Any]]]) -> str:
    """Gateway ÷ LiteLLM, paired per repetition, words per front-end core-second and raw."""
    lines = []
    for name in ("coalescing", "plain"):
        pairs = list(zip(results[name], results["litellm"], strict=True))
        core = [g["words_per_core_s"] / lt["words_per_core_s"] for g, lt in pairs]
        raw = [g["tokens_per_s"] / lt["tokens_per_s"] for g, lt in pairs]
        lines.append(
            f"- {TARGETS[name]} ÷ LiteLLM: words/s per front-end core-s {spread(core, 1)}x; "
            f"raw words/s {spread(raw, 1)}x (median over repetitions of the same-repetition ratio)"
        )
    return "\n".join(lines)


def render(run: Run, args: argparse.Namespace, started: str, load: str, elapsed: float) -> str:
    cmd = " ".join(["python", "bench/litellm.py", *sys.argv[1:]])
    rows = "\n".join(table_row(name, run.results[name]) for name in TARGETS)
    return f"""{LITELLM_HEADING}

{started}, `{cmd}`: whole run {elapsed:.0f} s.
LiteLLM {litellm_version()}. Load average at the start {load}; autogroup nice of the
benchmark's processes {args.nice};
{run.busy} run(s) started on busy cores after waiting up to {args.settle:g} s
(the machine may be shared: see `other %`).

`POST /v1/chat/completions`, `stream: true`, a {WORDS}-word reply, {CONNECTIONS} connections
each streaming one reply after another; {args.reps} repetitions of {args.seconds:g} s (after
{args.warmup:g} s) per front end, interleaved; median (min-max). Front end alone on CPU 0; its
upstream and the client (`bench/http_client.py paced`) on CPU 1. Upstream: the stub over gRPC
for the gateway, `bench/openai_upstream.py` (the stub's same one-word chunk frames, pre-built)
for LiteLLM. requests/s: streams completed in the window; streams/s: words received ÷
{WORDS}; delta events/s: SSE frames received; words/event: words per body chunk (one server
`send`); words/s per front-end core-s: words received ÷ the front end's CPU seconds (the
figure); %: CPU in % of one core; other %: CPU of processes outside the benchmark.

{HEAD}
{rows}

{ratios(run.results)}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 short repetition; writes nothing")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="autogroup nice of the benchmark's sessions (e.g. -10 on a shared machine)",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    args = p.parse_args()
    if not (VENV / "bin/litellm").exists():
        print(f"skipped: no LiteLLM at {VENV} (set LITELLM_VENV). Create it with:\n  {CREATE}")
        return
    if args.quick:
        args.reps, args.warmup, args.seconds, args.settle = 1, 2.0, 3.0, 1.0
    raise_fd_limit()
    SESSION_NICE["value"] = args.nice
    # LiteLLM's logging as the gateway's --log-level warning (no access log line); its model
    # cost map from its own package, not fetched.
    os.environ.setdefault("LITELLM_LOG", "WARNING")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    t0 = time.monotonic()
    with processes("bench-litellm-") as procs:
        run = Run(args, procs)
        run.start()
        run.sweep()
    text = render(run, args, started, load, time.monotonic() - t0)
    print(text)
    if not args.quick:
        splice_section(args.out, LITELLM_HEADING, text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
