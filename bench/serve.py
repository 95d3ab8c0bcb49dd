"""`python -m bench.serve --port P --backend HOST:PORT`: the relay floor on uvicorn.

The same uvicorn settings as `python -m gateway` (loop and http "auto", no access log), so the
two differ only in what the app does. The gateway itself is benchmarked as `python -m gateway`.
"""

from __future__ import annotations

import argparse

import uvicorn

from bench.relay_floor import create_app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", required=True)
    args = p.parse_args()
    uvicorn.run(
        create_app(args.backend),
        host="127.0.0.1",
        port=args.port,
        loop="auto",
        http="auto",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
