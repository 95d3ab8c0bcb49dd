"""`python bench/run.py [--quick]`: the gateway benchmark (see bench/README.md).

Gateway (or relay floor) alone on CPU 0; the stub, wrk and the latency client on
CPU 1. Runs the stub alone over gRPC, the relay floor, and the real gateway
(repetitions interleaved, so drift hits all alike), prints one table and writes
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PATHS, Window, body, raise_fd_limit, rss_kib, wait_quiet
from bench.procs import (
    GATEWAY_CPU,
    LOAD_CPU,
    NO_COALESCING,
    ROOT,
    Processes,
    free_port,
    missing_tools,
    processes,
    run_json,
    wait_port,
)
from bench.report import Results, write_results

PY = sys.executable
CONNECTIONS = 32
SLOW_STUB_DELAY = 0.45  # + stub-slow's own 0.05 s: one chunk per 0.5 s per held stream
WRK_WORKLOADS = (("ns16", 16, False), ("s256", 256, True))
# The stub alone: workload -> (words, concurrency); ns16 asks for a buffered reply.
STUB_WORKLOADS = {"ns16": (16, 32), "s256": (256, 32), "lat1": (256, 1), "lat8": (256, 8)}


@dataclass
class Target:
    name: str  # "relay", "gateway", "gateway chat"
    endpoint: str  # "responses" or "chat"
    port: int
    pid: int
    stream_bytes: int = 0  # raw HTTP bytes of one 256-word streamed response


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def raw_exchange(port: int, endpoint: str, words: int, stream: bool) -> tuple[int, bytes]:
    """One keep-alive request on a raw socket: (status, the whole raw response)."""
    payload = body(endpoint, words, stream=stream)
    head = (
        f"POST {PATHS[endpoint]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
        f"application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + payload)
        while True:
            piece = s.recv(65536)
            data += piece
            if not piece or data.endswith(b"\r\n0\r\n\r\n"):
                break
            if b"\r\n\r\n" in data and b"content-length:" in data.lower().split(b"\r\n\r\n")[0]:
                headers, _, rest = data.partition(b"\r\n\r\n")
                length = int(headers.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    break
    return int(data.split(b" ", 2)[1]), data


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Processes, tmp: Path) -> None:
        self.args, self.procs, self.tmp = args, procs, tmp
        self.results = Results()
        self.stub_pid = 0
        self.backend = ""
        self.reps_run = self.reps_busy = 0
        # Latency clients run at real-time priority, so the stub sharing their core
        # cannot delay the moment a byte is seen.
        self.rt = (
            ["chrt", "-f", "10"]
            if shutil.which("chrt")
            and subprocess.run(["chrt", "-f", "10", "true"], check=False).returncode == 0
            else []
        )
        if not self.rt:
            self.results.note("chrt -f unavailable: latency clients ran at normal priority.")

    def settle(self) -> None:
        """Before a repetition: wait up to --settle s for the cores to be quiet (this
        machine may be shared; our own processes are idle between repetitions)."""
        self.reps_run += 1
        if not wait_quiet(self.args.settle):
            self.reps_busy += 1

    def wrk(self, t: Target, workload: str, seconds: float) -> dict[str, Any]:
        _, words, stream = next(w for w in WRK_WORKLOADS if w[0] == workload)
        body_file = self.tmp / f"{t.endpoint}-{words}-{stream}.json"
        body_file.write_bytes(body(t.endpoint, words, stream=stream))
        argv = [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench/post.lua"),
            f"http://127.0.0.1:{t.port}{PATHS[t.endpoint]}",
            "--",
            str(body_file),
        ]
        before = children_cpu()
        window = Window(pids={"server": t.pid, "stub": self.stub_pid}).start()
        r = run_json(argv, LOAD_CPU, timeout=seconds + 30)
        r.update(window.stop(), loadgen_cpu_s=children_cpu() - before)
        wrk_s = r["duration_us"] / 1e6
        if stream:  # streams take seconds: count bytes, not the few completed streams
            r["rps"] = r["bytes"] / t.stream_bytes / wrk_s
        else:
            r["rps"] = r["requests"] / wrk_s
        if r["errors"] or r["status_errors"]:
            self.results.note(
                f"{t.name} {workload}: wrk saw {r['errors']} socket errors, "
                f"{r['status_errors']} non-2xx answers"
            )
        return r

    def latency(self, t: Target, conc: int) -> dict[str, Any]:
        argv = [
            *self.rt,
            PY,
            "-m",
            "bench.http_client",
            "latency",
            "--port",
            str(t.port),
            "--endpoint",
            t.endpoint,
            "--words",
            "256",
            "--concurrency",
            str(conc),
            "--duration",
            str(self.args.lat_seconds),
            "--server-pid",
            str(t.pid),
            "--stub-pid",
            str(self.stub_pid),
        ]
        return run_json(argv, LOAD_CPU, timeout=60)

    def stub_direct(self, name: str) -> None:
        """One repetition of workload `name` against the stub alone, over gRPC."""
        words, conc = STUB_WORKLOADS[name]
        latency = name.startswith("lat")
        dur = self.args.lat_seconds if latency else self.args.seconds
        self.settle()
        r = run_json(
            [
                *(self.rt if latency else []),
                PY,
                "-m",
                "bench.grpc_client",
                "--target",
                self.backend,
                "--words",
                str(words),
                "--concurrency",
                str(conc),
                "--duration",
                str(dur),
                "--stub-pid",
                str(self.stub_pid),
                *(["--buffered"] if name == "ns16" else []),  # as gateway and relay ask
            ],
            GATEWAY_CPU,
            timeout=dur + 60,
        )
        self.results.add("stub", name, r)

    def serve(self, kind: str, backend: str, name: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        proc = self.procs.http_server(GATEWAY_CPU, kind, port, backend, name, *NO_COALESCING)
        wait_port(port, proc)
        return proc, port

    def usable(self, t: Target) -> bool:
        """Probe both kinds of request; learn the size of one streamed response."""
        for stream in (False, True):
            status, raw = raw_exchange(t.port, t.endpoint, 256 if stream else 16, stream)
            if status != 200:
                why = f"{PATHS[t.endpoint]} answered HTTP {status}: {raw[-160:]!r}"
                self.results.note(f"{t.name}: skipped, {why}")
                print(f"  {t.name}: skipped ({why})", flush=True)
                return False
            if stream:
                t.stream_bytes = len(raw)
                frames = raw.count(b"\n\n")  # the HTTP head ends in \r\n\r\n: not counted
                self.results.note(
                    f"{t.name}: one 256-word stream is {len(raw):,} bytes, {frames} SSE frames"
                )
        return True

    def http_targets(self, targets: list[Target]) -> None:
        a = self.args
        targets = [t for t in targets if self.usable(t)]
        for workload, _, _ in WRK_WORKLOADS:
            for t in targets:
                self.wrk(t, workload, 1)  # warm-up
            for _ in range(a.reps):
                for t in targets:
                    self.settle()
                    self.results.add(t.name, workload, self.wrk(t, workload, a.seconds))
            for t in targets:
                print(f"  {t.name} {workload}: {self.results.last(t.name, workload)}", flush=True)
        for conc in (1, 8):
            for _ in range(a.reps):
                # The stub's own time to first chunk, measured between the same repetitions
                # as the gateway's time to first byte: drift on the machine hits both.
                self.stub_direct(f"lat{conc}")
                for t in targets:
                    self.settle()
                    self.results.add(t.name, f"lat{conc}", self.latency(t, conc))
            for name in ("stub", *(t.name for t in targets)):
                print(f"  {name} lat{conc}: {self.results.last(name, f'lat{conc}')}", flush=True)

    def memory(self, kind: str, slow_backend: str) -> None:
        """RSS growth of a fresh server process while `--streams` slow streams are open."""
        proc, port = self.serve(kind, slow_backend, f"{kind}-memory")
        try:
            run_json(
                [
                    PY,
                    "-m",
                    "bench.http_client",
                    "latency",
                    "--port",
                    str(port),
                    "--words",
                    "2",
                    "--concurrency",
                    "16",
                    "--duration",
                    "0.1",
                    "--warmup",
                    "0",
                ],
                LOAD_CPU,
                timeout=60,
            )  # warm-up: every code path once, 16 at a time
            self.settle()
            before = rss_kib(proc.pid)
            holder = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    str(LOAD_CPU),
                    PY,
                    "-m",
                    "bench.http_client",
                    "hold",
                    "--port",
                    str(port),
                    "--model",
                    "stub-slow",
                    "--words",
                    "200",
                    "--count",
                    str(self.args.streams),
                    "--hold",
                    "3",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                assert holder.stdout is not None
                line = holder.stdout.readline().decode()
                window = Window(pids={"server": proc.pid}).start()
                peak = before
                for _ in range(10):
                    peak = max(peak, rss_kib(proc.pid))
                    time.sleep(0.25)
                cpu = window.stop()
                rest = holder.communicate(timeout=60)[0].decode()
            finally:
                if holder.poll() is None:
                    holder.kill()
                    holder.wait()
            final = [ln for ln in rest.splitlines() if ln.startswith("BENCH_JSON ")]
            held = json.loads(final[-1].removeprefix("BENCH_JSON ")) if final else {}
            self.results.add(
                kind,
                "mem",
                {
                    "rss_before_mib": before / 1024,
                    "rss_growth_mib": (peak - before) / 1024,
                    "rss_per_stream_kib": (peak - before) / max(1, self.args.streams),
                    "ready": int(line.split()[1]) if line.startswith("READY") else 0,
                    "open_at_end": held.get("open_at_end", 0),
                    **cpu,
                },
            )
            print(f"  {kind} memory: {self.results.last(kind, 'mem')}", flush=True)
        finally:
            self.procs.stop(proc)

    def run(self) -> None:
        stub_port = free_port()
        stub = self.procs.stub(LOAD_CPU, stub_port)
        wait_port(stub_port, stub)
        self.stub_pid = stub.pid
        self.backend = backend = f"127.0.0.1:{stub_port}"
        print("stub alone (direct gRPC client on CPU 0)", flush=True)
        for name in ("ns16", "s256"):
            for _ in range(self.args.reps):
                self.stub_direct(name)
            print(f"  stub alone {name}: {self.results.last('stub', name)}", flush=True)
        print("relay floor and gateway (CPU 0) + stub, wrk, latency client (CPU 1)", flush=True)
        relay, relay_port = self.serve("relay", backend, "relay")
        gateway, gateway_port = self.serve("gateway", backend, "gateway")
        self.http_targets(
            [
                Target("relay", "responses", relay_port, relay.pid),
                Target("gateway", "responses", gateway_port, gateway.pid),
                Target("gateway chat", "chat", gateway_port, gateway.pid),
            ]
        )
        for proc in (relay, gateway, stub):
            self.procs.stop(proc)
        slow_port = free_port()
        slow = self.procs.stub(
            LOAD_CPU, slow_port, "--chunk-delay", str(SLOW_STUB_DELAY), name="stub-slow"
        )
        wait_port(slow_port, slow)
        print(f"memory: {self.args.streams} open stub-slow streams", flush=True)
        for kind in ("relay", "gateway"):
            self.memory(kind, f"127.0.0.1:{slow_port}")
        self.procs.stop(slow)
        if self.reps_busy:
            self.results.note(
                f"{self.reps_busy} of {self.reps_run} repetitions started while "
                f"other processes kept the cores busy (after waiting up to "
                f"{self.args.settle:g} s each)"
            )


def idle_check(results: Results) -> None:
    """Note CPU used by processes outside the benchmark just before it starts."""
    window = Window().start()
    time.sleep(1.0)
    cpu = window.stop()
    busy = {k: v for k, v in cpu.items() if k.startswith("cpu")}
    if any(v > 10 for v in busy.values()):
        text = ", ".join(f"{k} {v:.0f}%" for k, v in busy.items())
        results.note(
            f"the machine was not idle before the run ({text} busy): other "
            "processes share the cores; see the `other %` column"
        )
        print(f"warning: machine not idle ({text})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 short repetition, 200 held streams")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=5.0, help="per throughput repetition")
    p.add_argument("--lat-seconds", type=float, default=3.0, help="per latency repetition")
    p.add_argument("--streams", type=int, default=1000, help="open streams for the RSS figure")
    p.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="wait up to this long before each repetition for quiet cores",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench/RESULTS.md")
    args = p.parse_args()
    if args.quick:
        args.reps, args.seconds, args.lat_seconds, args.streams = 1, 2.0, 1.5, 200
        args.settle = min(args.settle, 1.0)
    if missing := missing_tools():
        sys.exit(
            f"missing {', '.join(missing)}: apt-get update && apt-get install -y wrk "
            "util-linux (taskset)"
        )
    raise_fd_limit()
    started = time.monotonic()
    with processes("bench-") as procs:
        bench = Bench(args, procs, procs.log_dir)
        idle_check(bench.results)
        bench.run()
    text = write_results(bench.results, args, time.monotonic() - started)
    print(text)
    if not args.quick:
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
