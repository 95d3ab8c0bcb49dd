"""`python -m bench.serve {relay,gateway} --port P --backend HOST:PORT`

Serves the relay floor or the real gateway with the *same* uvicorn settings.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette


def build(target: str, backend: str) -> Starlette:
    if target == "relay":
        from bench.relay_floor import create_app

        return create_app(backend)
    from gateway.app import create_app as create_gateway
    from gateway.config import Settings

    return create_gateway(Settings(backend=backend))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("target", choices=("relay", "gateway"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", required=True)
    args = p.parse_args()
    # The same settings for both targets: loop/http "auto" pick uvloop/httptools if installed.
    uvicorn.run(
        build(args.target, args.backend),
        host="127.0.0.1",
        port=args.port,
        loop="auto",
        http="auto",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
