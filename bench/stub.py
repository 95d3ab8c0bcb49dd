"""`python -m bench.stub --port P [--chunk-delay S]`: the stub ChatService, minus per-call logs.

Same server as `python -m backend_stub` (backend_stub.server.start); only its
INFO log line per call is off, so the backend spends its core on serving.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from backend_stub.server import start


async def serve(port: int, chunk_delay: float) -> None:
    stub = await start("127.0.0.1", port, chunk_delay=chunk_delay)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await stub.stop(grace=0.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--chunk-delay", type=float, default=0.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.port, args.chunk_delay))


if __name__ == "__main__":
    main()
