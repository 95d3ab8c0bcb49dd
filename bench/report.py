"""Results of a run: one table (median, min-max, CPU, ratio to the relay floor), the
targets, and the versions, as Markdown for the terminal and bench/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import operator
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGETS = ("stub", "relay", "gateway", "gateway chat")
TARGET_LABELS = {
    "stub": "stub alone (gRPC)",
    "relay": "relay floor",
    "gateway": "gateway",
    "gateway chat": "gateway chat",
}
# workload -> (label, [(metric key, figure label, is throughput)])
LATENCY = [
    ("ttfb_p50_ms", "TTFB p50 ms", False),
    ("ttfb_p99_ms", "TTFB p99 ms", False),
    ("ttlb_p50_ms", "TTLB p50 ms", False),
    ("ttlb_p99_ms", "TTLB p99 ms", False),
]
WORKLOADS: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {
    "ns16": (
        "non-streaming, 16 words, 32 conns",
        [
            ("rps", "requests/s", True),
            ("p50_ms", "latency p50 ms", False),
            ("p99_ms", "latency p99 ms", False),
        ],
    ),
    "s256": (
        "streaming, 256 words, 32 conns",
        [
            ("rps", "streams/s", True),
            ("deltas", "delta events/s", True),
            ("p50_ms", "stream p50 ms", False),
            ("p99_ms", "stream p99 ms", False),
        ],
    ),
    "lat1": ("streaming 256 words, 1 stream", LATENCY),
    "lat8": ("streaming 256 words, 8 streams", LATENCY),
    "mem": (
        "open stub-slow streams",
        [
            ("rss_growth_mib", "RSS growth MiB", False),
            ("rss_per_stream_kib", "RSS KiB per stream", False),
        ],
    ),
}
WORDS = {"ns16": 16, "s256": 256}


class Results:
    def __init__(self) -> None:
        self.reps: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.notes: list[str] = []

    def add(self, target: str, workload: str, r: dict[str, Any]) -> None:
        r = dict(r)
        if target == "stub":  # the gRPC client's names -> the HTTP ones; the stub is the server
            r.update(rps=r["calls_per_s"], deltas=r["chunks_per_s"], server_cpu_s=r["stub_cpu_s"])
            for a, b in (("ttfc", "ttfb"), ("ttlc", "ttlb")):
                for p in ("p50", "p99"):
                    r[f"{b}_{p}_ms"] = r[f"{a}_{p}_ms"]
        elif workload in WORDS and "rps" in r:
            r["deltas"] = r["rps"] * WORDS[workload]
        if "loadgen_cpu_s" in r:  # CPU of both cores not used by the benchmark's processes
            ours = sum(r.get(f"{k}_cpu_s", 0.0) for k in ("loadgen", "stub"))
            ours += r["server_cpu_s"] if target != "stub" else 0.0
            r["other_pct"] = max(0.0, r["proc_pct"] - 100 * ours / r["elapsed"])
        self.reps[target, workload].append(r)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def last(self, target: str, workload: str) -> str:
        r = self.reps[target, workload][-1]
        keys = [k for _, ms in [WORKLOADS[workload]] for k, _, _ in ms] + ["cpu0", "cpu1"]
        return ", ".join(f"{k}={r[k]:.4g}" for k in keys if isinstance(r.get(k), int | float))

    def values(self, target: str, workload: str, key: str, per_core: bool = False) -> list[float]:
        out = []
        for r in self.reps.get((target, workload), []):
            if key not in r:
                continue
            v = float(r[key])
            if per_core:
                cores = r.get("server_cpu_s", 0.0) / r["elapsed"]
                v = v / cores if cores > 0 else 0.0
            out.append(v)
        return out

    def median(self, target: str, workload: str, key: str, per_core: bool = False) -> float | None:
        vals = self.values(target, workload, key, per_core)
        return statistics.median(vals) if vals else None

    def paired(
        self,
        target: str,
        ref: str,
        workload: str,
        key: str,
        per_core: bool = False,
        op: Callable[[float, float], float] = operator.truediv,
    ) -> list[float]:
        """`op(target's, ref's)` per repetition. Repetition i of every target runs back to
        back, so a slow stretch of this shared machine hits both members of a pair; the
        median of the pairs is steadier than the ratio of two medians."""
        pairs = zip(
            self.values(target, workload, key, per_core),
            self.values(ref, workload, key, per_core),
            strict=False,
        )
        return [op(a, b) for a, b in pairs if b]


def _span(vals: list[float], spec: str) -> str:
    return f"{min(vals):{spec}} to {max(vals):{spec}}"


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def _cpu(res: Results, target: str, workload: str, key: str) -> str:
    vals = []
    for r in res.reps[target, workload]:
        if key in r:
            vals.append(100 * r[key] / r["elapsed"] if key.endswith("_cpu_s") else r[key])
    return f"{statistics.median(vals):.0f}" if vals else "-"


def table(res: Results) -> str:
    head = (
        "| workload | figure | target | median | min-max | per core-s | CPU0 % | CPU1 % "
        "| server % | stub % | irq % | other % | ÷ relay |"
    )
    lines = [head, "|" + "---|" * 13]
    for workload, (wlabel, metrics) in WORKLOADS.items():
        for key, label, throughput in metrics:
            for target in TARGETS:
                vals = res.values(target, workload, key)
                if not vals:
                    continue
                med = statistics.median(vals)
                core = res.median(target, workload, key, per_core=True) if throughput else None
                ratio = "-"
                raw = res.paired(target, "relay", workload, key)
                if target.startswith("gateway") and raw:
                    ratio = f"{statistics.median(raw):.2f}"
                    per_core = throughput and res.paired(target, "relay", workload, key, True)
                    if per_core:
                        ratio = f"{statistics.median(per_core):.2f} (raw {ratio})"
                cpu = " | ".join(
                    _cpu(res, target, workload, k)
                    for k in ("cpu0", "cpu1", "server_cpu_s", "stub_cpu_s", "irq_pct", "other_pct")
                )
                lines.append(
                    f"| {wlabel} | {label} | {TARGET_LABELS[target]} | {fmt(med)} "
                    f"| {fmt(min(vals))}-{fmt(max(vals))} | {fmt(core)} | {cpu} | {ratio} |"
                )
    return "\n".join(lines)


def targets(res: Results, streams: int) -> str:
    out = []

    def check(ok: bool | None, text: str) -> None:
        out.append(f"- {'-' if ok is None else 'PASS' if ok else 'FAIL'}: {text}")

    for target in ("gateway", "gateway chat"):
        for workload in ("ns16", "s256"):
            ratios = res.paired(target, "relay", workload, "rps", per_core=True)
            if not ratios:
                check(None, f"{target} {workload}: throughput per core ≥ 75% of relay: not run")
                continue
            ratio = statistics.median(ratios)
            check(
                ratio >= 0.75,
                f"{target} {workload}: throughput per gateway core-second "
                f"{ratio:.0%} of the relay floor (≥ 75%; repetitions {_span(ratios, '.0%')})",
            )
            p50, p99 = (
                res.median(target, workload, "p50_ms"),
                res.median(target, workload, "p99_ms"),
            )
            if p50 and p99:
                check(
                    p99 <= 3 * p50,
                    f"{target} {workload}: p99 {p99:.1f} ms = "
                    f"{p99 / p50:.2f} x p50 {p50:.1f} ms at 32 connections (≤ 3 x)",
                )
    if floor := res.paired("relay", "stub", "lat1", "ttfb_p50_ms", op=operator.sub):
        out.append(
            f"- for reference: the relay floor's TTFB p50 at 1 stream is "
            f"+{statistics.median(floor):.2f} ms over the stub's own TTFC "
            f"(repetitions {_span(floor, '+.2f')}), with no translation at all"
        )
    relay_ttfb = res.median("relay", "lat1", "ttfb_p50_ms")
    for target in ("gateway", "gateway chat"):
        ttfb = res.median(target, "lat1", "ttfb_p50_ms")
        gaps = res.paired(target, "relay", "lat1", "ttfb_p50_ms", op=operator.sub)
        if ttfb is not None and relay_ttfb is not None and gaps:
            gap = statistics.median(gaps)
            check(
                gap <= 0.5,
                f"{target}: TTFB p50 at 1 stream {ttfb:.2f} ms vs the relay floor's "
                f"{relay_ttfb:.2f} ms: {gap:+.2f} ms (paired; ≤ +0.5 ms; repetitions "
                f"{_span(gaps, '+.2f')})",
            )
    growth = res.median("gateway", "mem", "rss_growth_mib")
    if growth is not None:
        ready = res.reps["gateway", "mem"][-1]["ready"]
        check(
            growth <= 60 * 1e6 / 2**20 and ready == streams,
            f"gateway RSS growth with "
            f"{ready}/{streams} open streams: {growth:.1f} MiB (≤ 60 MB = 57.2 MiB)",
        )
    return "\n".join(out)


def versions() -> str:
    def v(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_v = (wrk.stdout or wrk.stderr).splitlines()[0].split("Copyright")[0].strip()
    except (OSError, IndexError):
        wrk_v = "?"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    pkgs = ", ".join(
        f"{d} {v(d)}"
        for d in ("grpcio", "protobuf", "starlette", "uvicorn", "orjson", "uvloop", "httptools")
    )
    return (
        f"python {platform.python_version()}, {pkgs}; {wrk_v}; kernel {platform.release()}; "
        f'CPU {cpu}. uvicorn loop="auto" → {loop}, http="auto" → {http}.'
    )


def render(res: Results, args: argparse.Namespace, elapsed: float) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = " ".join(["python", "bench/run.py", *sys.argv[1:]])
    notes = "\n".join(f"- {n}" for n in res.notes) or "- none"
    return f"""# Benchmark results

{when}, `{cmd}`: {args.reps} repetition(s) of {args.seconds:g} s (throughput) and
{args.lat_seconds:g} s (latency), {args.streams} held streams; whole run {elapsed:.0f} s.

Versions: {versions()}

Server under test alone on CPU 0; stub, wrk and the latency client on CPU 1 (for
"stub alone" its gRPC client is on CPU 0). "per core-s": the figure ÷ the CPU the server
process used (the stub's for "stub alone"). server %, stub %: CPU of those processes in %
of one core; irq %: (soft)irq time on both cores (loopback networking); other %: CPU on
both cores used by processes outside the benchmark (noise: rerun if large).
"÷ relay": median over repetitions of gateway ÷ relay floor in the same repetition (per
core-s for throughput, raw in brackets).
See bench/README.md.

{table(res)}

## Targets

{targets(res, args.streams)}

## Notes

{notes}
"""


HELD_HEADING = "## Held streams at a real token rate"
LITELLM_HEADING = "## Streaming against LiteLLM"


def splice_section(path: Path, heading: str, text: str) -> None:
    """Put `text` (starting with the `## ` heading) in place of that section of the file at
    `path`, or at its end; the rest of the file is kept."""
    old = path.read_text() if path.exists() else ""
    before, found, after = old.partition(heading)
    rest = ""
    if found and (nxt := after.find("\n## ")) >= 0:
        rest = after[nxt + 1 :]
    path.write_text(
        before.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n" + (rest and "\n" + rest)
    )


def kept_section(path: Path, heading: str) -> str:
    """The section `heading` of the file at `path` (to its end or the next `## `), or ""."""
    old = path.read_text() if path.exists() else ""
    _, found, after = old.partition(heading)
    if not found:
        return ""
    nxt = after.find("\n## ")
    return heading + (after if nxt < 0 else after[: nxt + 1])


def write_results(res: Results, args: argparse.Namespace, elapsed: float) -> str:
    text = render(res, args, elapsed)
    if not args.quick:
        # bench/held.py's and bench/litellm.py's own sections stay
        kept = (kept_section(args.out, h) for h in (HELD_HEADING, LITELLM_HEADING))
        args.out.write_text(text + "".join(f"\n{k.rstrip()}\n" for k in kept if k))
    return text
