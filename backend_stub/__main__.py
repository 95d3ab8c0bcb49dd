"""`python -m backend_stub --host 127.0.0.1 --port 50051 --chunk-delay 0.0 --log-level info`

Runs until SIGINT or SIGTERM; logs one JSON object per line to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from backend_stub.server import start
from runinfra import logs
from runinfra.serving import serve_until_signalled


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backend_stub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds before each chunk")
    parser.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--log-level", default="info", choices=logs.LEVELS)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stub = await start(
        args.host,
        args.port,
        chunk_delay=args.chunk_delay,
        max_message_bytes=args.max_message_bytes,
    )
    await serve_until_signalled(stub, logging.getLogger("backend_stub"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs.configure(args.log_level)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
