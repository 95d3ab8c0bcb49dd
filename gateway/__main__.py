"""python -m gateway: serve the gateway (the stub backend runs in-process without --backend)."""

from __future__ import annotations

import argparse
import dataclasses
import logging

import uvicorn

from gateway.app import create_app
from gateway.config import Settings


def parse_args(argv: list[str] | None = None) -> Settings:
    base = Settings.from_env()
    p = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    p.add_argument("--host", default=base.host)
    p.add_argument("--port", type=int, default=base.port)
    p.add_argument(
        "--backend", default=base.backend, help="ChatService address (default: embedded stub)"
    )
    p.add_argument("--default-model", default=base.default_model)
    p.add_argument("--stub-chunk-delay", type=float, default=base.stub_chunk_delay)
    args = p.parse_args(argv)
    return dataclasses.replace(base, **{k: v for k, v in vars(args).items()})


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
