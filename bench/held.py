"""`python bench/held.py [--quick]`: held streams at a real token rate (see bench/README.md).

The stub paces every word at 20 ms (50 tokens/s a stream); each stream is 200 words. For N
concurrent streams, stepped up, the relay floor, the gateway without coalescing
(`--max-hold-ms 0`, today's gateway) and the gateway with it (its default) run back to back
on CPU 0, with the stub and one async client (`bench/http_client.py paced`) on CPU 1. A
target leaves the sweep after failing at two N in a row. Then py-spy profiles the coalescing
gateway at its largest passing N. Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import raise_fd_limit, wait_quiet
from bench.procs import (
    GATEWAY_CPU,
    LOAD_CPU,
    ROOT,
    SESSION_NICE,
    Processes,
    free_port,
    processes,
    run_json,
    wait_port,
)
from bench.profile import section
from bench.report import HELD_HEADING, splice_section

PY = sys.executable
WORD_DELAY = 0.02  # 50 tokens/s per stream
WORDS = 200
MAX_GAP_MS = 150.0
STEPS = (50, 100, 200, 400, 800, 1600)
# name -> (label, server kind, gateway options)
TARGETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "relay": ("relay floor", "relay", ()),
    "plain": ("gateway, no coalescing", "gateway", ("--max-hold-ms", "0")),
    "coalescing": ("gateway, coalescing", "gateway", ()),
}


KEEP_PACE = 0.75  # of the offered N x 50 tokens/s (the stub's own pace drifts a little)


def passes(n: int, r: dict[str, Any]) -> bool:
    """No errors, p99 gap ≤ 150 ms, and the streams keep pace: a loaded server that
    slows every stream evenly keeps its gaps short while its tokens fall behind."""
    keeps_pace = r["tokens_per_s"] >= KEEP_PACE * n / WORD_DELAY
    return bool(r["errors"] == 0 and r["gap_p99_ms"] <= MAX_GAP_MS and keeps_pace)


def per_core(r: dict[str, Any]) -> float:
    """Tokens delivered per second of the server's CPU: its capacity, whichever core limits."""
    cores = r["server_cpu_s"] / r["elapsed"]
    return float(r["tokens_per_s"] / cores) if cores else 0.0


def client(
    args: argparse.Namespace, port: int, server_pid: int, stub_pid: int, n: int
) -> list[str]:
    return [
        PY,
        "-m",
        "bench.http_client",
        "paced",
        "--port",
        str(port),
        "--words",
        str(WORDS),
        "--count",
        str(n),
        "--spread",
        str(WORDS * WORD_DELAY),
        "--warmup",
        str(args.warmup),
        "--duration",
        str(args.seconds),
        "--open-timeout",
        "30",
        "--server-pid",
        str(server_pid),
        "--stub-pid",
        str(stub_pid),
    ]


def row(n: int, name: str, r: dict[str, Any]) -> str:
    el = r["elapsed"]
    other = max(0.0, r["proc_pct"] - 100 * sum(r[f"{k}_cpu_s"] for k in PIDS) / el)
    cells = [
        f"{n:,}",
        TARGETS[name][0],
        f"{r['tokens_per_s']:,.0f}",
        f"{per_core(r):,.0f}",
        f"{r['words_per_event']:.1f}",
        f"{r['gap_p50_ms']:.1f}",
        f"{r['gap_p99_ms']:.1f}",
        f"{r['ttfb_p50_ms']:.1f}",
        f"{r['ttfb_p99_ms']:.1f}",
        f"{r['errors']}",
        *(f"{100 * r[f'{k}_cpu_s'] / el:.0f}" for k in PIDS),
        f"{r['server_rss_mib']:.0f}",
        f"{other:.0f}",
        f"{r['cpu0']:.0f} / {r['cpu1']:.0f}",
        "yes" if passes(n, r) else "no",
    ]
    return "| " + " | ".join(cells) + " |"


PIDS = ("server", "stub", "loadgen")
HEAD = (
    "| N | target | tokens/s | tokens per server core-s | words/event | gap p50 ms "
    "| gap p99 ms | TTFB p50 ms | TTFB p99 ms | errors | server % | stub % | client % "
    "| server RSS MiB | other % | CPU0 / CPU1 busy % | passes |\n" + "|---" * 17 + "|"
)


class Sweep:
    def __init__(self, args: argparse.Namespace, procs: Processes) -> None:
        self.args, self.procs = args, procs
        self.rows: list[str] = []
        self.best: dict[str, tuple[int, float]] = {}  # target -> (largest N passed, per core)
        self.servers: dict[str, tuple[int, int]] = {}
        self.stub_pid = 0
        self.busy = 0

    def start(self) -> None:
        stub_port = free_port()
        stub = self.procs.stub(LOAD_CPU, stub_port, "--chunk-delay", str(WORD_DELAY))
        wait_port(stub_port, stub)
        self.stub_pid = stub.pid
        for name, (_, kind, extra) in TARGETS.items():
            port = free_port()
            proc = self.procs.http_server(
                GATEWAY_CPU, kind, port, f"127.0.0.1:{stub_port}", name, *extra
            )
            wait_port(port, proc)
            self.servers[name] = (port, proc.pid)

    def run(self, name: str, n: int) -> dict[str, Any]:
        port, pid = self.servers[name]
        timeout = self.args.warmup + self.args.seconds + 90
        return run_json(client(self.args, port, pid, self.stub_pid, n), LOAD_CPU, timeout)

    def sweep(self) -> None:
        failed = dict.fromkeys(TARGETS, 0)
        for n in self.args.steps:
            for name in [t for t in self.args.targets if failed[t] < 2]:
                self.busy += not wait_quiet(self.args.settle)
                r = self.run(name, n)
                self.rows.append(row(n, name, r))
                print(self.rows[-1], flush=True)
                if passes(n, r):
                    self.best[name], failed[name] = (n, per_core(r)), 0
                else:
                    failed[name] += 1

    def profile(self, n: int, seconds: int) -> str:
        """py-spy on the coalescing gateway while the client holds `n` streams."""
        pid = self.servers["coalescing"][1]
        raw = self.procs.log_dir / "held-profile.txt"
        load = threading.Thread(target=self.run, args=("coalescing", n))
        load.start()
        time.sleep(self.args.warmup)
        beside = Path(sys.executable).parent / "py-spy"  # a virtualenv's, active or not
        spy = [str(beside) if beside.exists() else "py-spy", "record", "--pid", str(pid)]
        spy += ["--duration", str(seconds), "--rate", "250", "--format", "raw"]
        spy += ["--nonblocking", "--output", str(raw)]
        try:
            out = subprocess.run(
                ["taskset", "-c", str(LOAD_CPU), *spy], capture_output=True, timeout=seconds + 30
            )
        finally:
            load.join()
        title = f"gateway (coalescing), {n} held streams, py-spy {seconds} s at 250 Hz"
        if not raw.exists():
            return f"### {title}\n\npy-spy failed: {out.stderr.decode()[-300:]}\n"
        return section(title, raw, 15)


def headline(best: dict[str, tuple[int, float]]) -> str:
    lines = []
    for name, (label, _, _) in TARGETS.items():
        n, core = best.get(name, (0, 0.0))
        lines.append(
            f"- {label}: largest N that passes: {n:,} ({core:,.0f} tokens per server core-s "
            f"there, about {core * WORD_DELAY:,.0f} such streams per core)"
        )
    (plain, plain_core), (coal, coal_core) = (
        best.get(t, (0, 0.0)) for t in TARGETS if t != "relay"
    )
    ratio = f"{coal / plain:.1f}x" if plain else "n/a"
    verdict = "PASS" if plain and coal >= 3 * plain else "FAIL"
    lines.append(f"- {verdict}: largest N, coalescing ÷ no coalescing = {ratio} (target ≥ 3x)")
    if plain_core:
        lines.append(
            f"- per server core-second at those N: coalescing ÷ no coalescing = "
            f"{coal_core / plain_core:.1f}x"
        )
    return "\n".join(lines)


def render(
    sweep: Sweep, args: argparse.Namespace, started: str, load: str, elapsed: float, prof: str
) -> str:
    cmd = " ".join(["python", "bench/held.py", *sys.argv[1:]])
    return f"""{HELD_HEADING}

{started}, `{cmd}`: whole run {elapsed:.0f} s.
Load average at the start {load}; autogroup nice of the benchmark's processes {args.nice};
{sweep.busy} run(s) started on busy cores after waiting up to {args.settle:g} s (the machine
may be shared: see `other %`).

The stub paces each word at {1000 * WORD_DELAY:.0f} ms ({1 / WORD_DELAY:.0f} tokens/s a stream), \
{WORDS} words a stream, `/v1/responses`.
N connections stream one reply after another, their first requests spread over one stream's
length; measured for {args.seconds:g} s after {args.warmup:g} s. Server on CPU 0; the stub and
the client (one asyncio process) on CPU 1. Per N the three targets run back to back.
gap: time between consecutive body chunks at the client (one server `send` each; the stream's
natural gap is 20 ms); TTFB includes the stub's own first 20 ms; tokens/s: words received in
the window (but each stream's last chunk) ÷ its length; tokens per server core-s: tokens/s ÷
the server's CPU (its capacity, whichever core limits); words/event: words per body chunk;
server/stub/client %: CPU in % of one core; other %: CPU of processes outside the benchmark;
CPU0 / CPU1: busy % of each core (100 on CPU 1: the stub and client's core, not the server,
limits). passes: no errors, p99 gap ≤ 150 ms, and tokens/s ≥ {KEEP_PACE:.0%} of N x \
{1 / WORD_DELAY:.0f} (the streams keep pace: an overloaded server slows every stream evenly,
so its gaps stay short while its tokens fall behind).

{HEAD}
{chr(10).join(sweep.rows)}

{headline(sweep.best)}

{prof}"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="N = 50 and 200, short windows")
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--targets", nargs="+", choices=tuple(TARGETS), default=list(TARGETS))
    p.add_argument("--warmup", type=float, default=6.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--profile-seconds", type=int, default=6)
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="autogroup nice of the benchmark's sessions (e.g. -10 on a shared machine)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench/RESULTS.md")
    args = p.parse_args()
    if args.quick:
        args.steps, args.warmup, args.seconds, args.settle = [50, 200], 5.0, 4.0, 1.0
    raise_fd_limit()
    SESSION_NICE["value"] = args.nice
    os.environ.setdefault("GATEWAY_MAX_IN_FLIGHT", "4096")  # 1,600 streams are not a 429
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    t0 = time.monotonic()
    with processes("bench-held-") as procs:
        sweep = Sweep(args, procs)
        sweep.start()
        print(HEAD, flush=True)
        sweep.sweep()
        best = sweep.best.get("coalescing", (0, 0.0))[0]
        prof = sweep.profile(best, args.profile_seconds) if best and not args.quick else ""
    text = render(sweep, args, started, load, time.monotonic() - t0, prof)
    print(text)
    if not args.quick:
        splice_section(args.out, HELD_HEADING, text)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
