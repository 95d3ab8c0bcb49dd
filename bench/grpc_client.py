"""`python -m bench.grpc_client --target HOST:PORT --words N --concurrency C --duration S`

The stub alone, through a direct grpc.aio client (one shared channel, C loops of
Chat calls). Prints calls/s, chunks/s and time to first / last chunk (p50, p99).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import grpc

from bench.common import Window, emit, percentile, text_of
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc


async def run(args: argparse.Namespace) -> dict[str, object]:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text_of(args.words))])
    request = pb.ChatRequest(model="stub-echo", messages=[message], buffered=args.buffered)
    ttfc: list[float] = []
    ttlc: list[float] = []
    chunks = 0
    async with grpc.aio.insecure_channel(args.target) as channel:
        stub = pb_grpc.ChatServiceStub(channel)
        now = time.perf_counter  # uvloop's loop.time() has 1 ms resolution
        measure_from = now() + args.warmup
        deadline = measure_from + args.duration

        async def worker() -> None:
            nonlocal chunks
            while (t0 := now()) < deadline:
                first, n = 0.0, 0
                async for chunk in stub.Chat(request):
                    if n == 0:
                        first = now()
                    n += len(chunk.text) > 0
                if t0 >= measure_from:
                    ttfc.append(first - t0)
                    ttlc.append(now() - t0)
                    chunks += n

        tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
        await asyncio.sleep(args.warmup)
        pids = {"loadgen": os.getpid(), **({"stub": args.stub_pid} if args.stub_pid else {})}
        window = Window(pids=pids).start()
        await asyncio.gather(*tasks)
        cpu = window.stop()
    elapsed = cpu["elapsed"]
    return {
        "calls": len(ttlc),
        "calls_per_s": len(ttlc) / elapsed,
        "chunks_per_s": chunks / elapsed,
        "ttfc_p50_ms": 1000 * percentile(ttfc, 50),
        "ttfc_p99_ms": 1000 * percentile(ttfc, 99),
        "ttlc_p50_ms": 1000 * percentile(ttlc, 50),
        "ttlc_p99_ms": 1000 * percentile(ttlc, 99),
        **cpu,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", required=True)
    p.add_argument("--words", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--stub-pid", type=int, default=0)
    p.add_argument("--buffered", action="store_true", help="ask for the whole reply in one chunk")
    args = p.parse_args()
    try:
        import uvloop  # the gateway's loop under uvicorn loop="auto"
    except ImportError:
        emit(asyncio.run(run(args)))
    else:
        emit(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
