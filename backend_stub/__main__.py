"""`python -m backend_stub --host 127.0.0.1 --port 50051 --chunk-delay 0.0 --log-level info`

Runs until SIGINT or SIGTERM; logs one JSON object per line to stderr.
"""

from __future__ import annotations

import argparse

from backend_stub.server import start
from runinfra.serving import add_server_arguments, run_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backend_stub", description=__doc__)
    add_server_arguments(parser)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds before each chunk")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_server(
        lambda: start(
            args.host,
            args.port,
            chunk_delay=args.chunk_delay,
            max_message_bytes=args.max_message_bytes,
        ),
        "backend_stub",
        args.log_level,
    )


if __name__ == "__main__":
    main()
