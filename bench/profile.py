"""`python bench/profile.py [--seconds 8] [--native]`: where the gateway's CPU goes.

Same layout as bench/run.py (server on CPU 0; stub, wrk and py-spy on CPU 1). For
each target and workload, wrk loads the server while `py-spy record` samples it;
prints the top functions by own time (leaf frame) and by inclusive time, and
writes bench/PROFILE.md. Needs py-spy (`pip install py-spy`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PATHS, body
from bench.procs import (
    GATEWAY_CPU,
    LOAD_CPU,
    NO_COALESCING,
    ROOT,
    Processes,
    free_port,
    wait_port,
)

_LINE = re.compile(r":\d+\)$")
# Leaves that mean "blocked, not on CPU" (native mode samples idle threads too).
_WAIT = re.compile(
    r"^(epoll_wait|epoll_pwait|poll|ppoll|select|pselect6?|futex|nanosleep|"
    r"clock_nanosleep|pthread_cond_(timed)?wait|sem_(timed)?wait) \("
)
# Entry frames on every stack of their thread: left out of the inclusive list.
_ENTRY = re.compile(
    r"<frozen runpy>|bench/serve\.py|gateway/__main__\.py|uvicorn/(main|server|_compat)\.py|"
    r"asyncio/runners\.py|\(threading\.py"
)
CASES = (  # (server, endpoint, workload, words, stream)
    ("gateway", "responses", "non-streaming 16 words", 16, False),
    ("gateway", "responses", "streaming 256 words", 256, True),
    ("gateway", "chat", "non-streaming 16 words", 16, False),
    ("gateway", "chat", "streaming 256 words", 256, True),
    ("relay", "responses", "non-streaming 16 words", 16, False),
    ("relay", "responses", "streaming 256 words", 256, True),
)


def layer(frames: list[str]) -> str:
    """Which thread and which layer a sample's leaf belongs to."""
    thread = "grpc poller" if any("(threading.py)" in f for f in frames) else "main"
    name, _, where = frames[-1].partition(" (")
    where = where.rstrip(")")
    if "libc" in where:
        what = f"syscall/libc `{name}`"
    elif "cygrpc" in where:
        what = "grpc Cython + C-core (cygrpc.so)"
    elif where.endswith(".py"):
        what = f"Python: {where.split('/')[0] if '/' in where else where}"
    elif where.endswith(".c") or where.endswith(".h") or ".so" in where:
        what = f"native: {where}"
    else:
        what = f"other: {where or name}"
    return f"{thread}: {what}"


Top = list[tuple[str, int]]


def top(raw: Path, n: int) -> tuple[int, Top, Top, Top]:
    """(samples, top own-time functions, top inclusive-time functions, top layers)."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        k = int(count)
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        if _WAIT.search(frames[-1]):
            continue
        total += k
        own[frames[-1]] += k
        layers[layer(frames)] += k
        for f in set(frames):
            if not _ENTRY.search(f):
                incl[f] += k
    return total, own.most_common(n), incl.most_common(n), layers.most_common(n)


def section(title: str, raw: Path, n: int) -> str:
    total, own, incl, layers = top(raw, n)
    if not total:
        return f"### {title}\n\nno samples\n"
    by_layer = "; ".join(f"{name} {100 * k / total:.0f}%" for name, k in layers if k / total > 0.01)
    rows = ["| own % | function (file) | | incl % | function (file) |", "|---|---|---|---|---|"]
    for i in range(n):
        a = own[i] if i < len(own) else ("", 0)
        b = incl[i] if i < len(incl) else ("", 0)
        rows.append(
            f"| {100 * a[1] / total:.1f} | `{a[0]}` | | {100 * b[1] / total:.1f} | `{b[0]}` |"
        )
    head = (
        f"### {title}\n\n{total} samples (active threads only). Own time by layer: {by_layer}.\n\n"
    )
    return head + "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rate", type=int, default=250)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--native", action="store_true", help="also sample C/Cython frames")
    p.add_argument("--only", default="", help="run only cases whose title contains this")
    p.add_argument("--out", type=Path, default=ROOT / "bench/PROFILE.md")
    p.add_argument("--raw-dir", type=Path, help="keep py-spy's raw (collapsed) stacks here")
    args = p.parse_args()
    for tool in ("py-spy", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}: pip install py-spy; apt-get install -y wrk util-linux")
    sections = []
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp_s:
        tmp = Path(tmp_s)
        procs = Processes(tmp)
        try:
            stub_port = free_port()
            stub = procs.stub(LOAD_CPU, stub_port)
            wait_port(stub_port, stub)
            servers = {}
            for kind in ("gateway", "relay"):
                port = free_port()
                backend = f"127.0.0.1:{stub_port}"
                proc = procs.http_server(GATEWAY_CPU, kind, port, backend, kind, *NO_COALESCING)
                wait_port(port, proc)
                servers[kind] = (port, proc.pid)
            for kind, endpoint, workload, words, stream in CASES:
                port, pid = servers[kind]
                title = f"{kind} {PATHS[endpoint]}, {workload}, 32 connections"
                if args.only not in title:
                    continue
                body_file = tmp / f"{endpoint}-{words}.json"
                body_file.write_bytes(body(endpoint, words, stream=stream))
                url = f"http://127.0.0.1:{port}{PATHS[endpoint]}"
                wrk = [
                    "taskset",
                    "-c",
                    str(LOAD_CPU),
                    "wrk",
                    "-t1",
                    "-c32",
                    "--timeout",
                    "10s",
                    "-s",
                    str(ROOT / "bench/post.lua"),
                    url,
                    "--",
                    str(body_file),
                ]
                subprocess.run([*wrk[:4], "-d1s", *wrk[4:]], capture_output=True, check=True)
                load = threading.Thread(
                    target=subprocess.run,
                    kwargs={
                        "args": [*wrk[:4], f"-d{args.seconds + 2}s", *wrk[4:]],
                        "capture_output": True,
                        "timeout": args.seconds + 30,
                    },
                )
                load.start()
                raw = (args.raw_dir or tmp) / f"{kind}-{endpoint}-{words}.txt"
                spy = [
                    "taskset",
                    "-c",
                    str(LOAD_CPU),
                    "py-spy",
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ]
                spy += ["--native"] if args.native else ["--nonblocking"]
                try:
                    subprocess.run(spy, capture_output=True, check=True, timeout=args.seconds + 30)
                finally:
                    load.join()
                sections.append(section(title, raw, args.top))
                print(sections[-1], flush=True)
        finally:
            procs.close()
    mode = (
        "native + Python frames"
        if args.native
        else "Python frames; C/Cython time is charged to the Python frame that called it"
    )
    args.out.write_text(
        "# Profiles of the gateway and the relay floor under load\n\n"
        f"`python bench/profile.py{' --native' if args.native else ''}`: py-spy "
        f"{args.rate} Hz for {args.seconds} s per case ({mode}). Own = samples whose leaf is "
        "the function; incl = samples with the function anywhere on the stack.\n\n"
        + "\n".join(sections)
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
