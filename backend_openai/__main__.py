"""`python -m backend_openai --upstream http://127.0.0.1:8000/v1 --port 50051 [--api-key-env VAR]`

Serves the ChatService over an OpenAI-compatible server (vLLM, llama.cpp, Ollama,
TGI, ...). The upstream's API key, if it needs one, is read from the environment
variable named by --api-key-env, never from the command line (which `ps` shows).
Runs until SIGINT or SIGTERM; logs one JSON object per line to stderr.
"""

from __future__ import annotations

import argparse
import os

from backend_openai.server import start
from runinfra.serving import add_server_arguments, run_server


def _timeout(value: str) -> float | None:
    """Seconds; 0 means no timeout."""
    return float(value) or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="backend_openai", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--upstream",
        default=os.environ.get("BACKEND_OPENAI_UPSTREAM"),
        help="base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 "
        "(default: $BACKEND_OPENAI_UPSTREAM)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="name of the environment variable holding the upstream API key (sent as Bearer)",
    )
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--read-timeout",
        type=_timeout,
        default=600.0,
        help="seconds to wait for each piece of the upstream reply; 0: no limit",
    )
    args = parser.parse_args(argv)
    if not args.upstream:
        parser.error("--upstream (or BACKEND_OPENAI_UPSTREAM) is required")
    args.api_key = None
    if args.api_key_env:
        args.api_key = os.environ.get(args.api_key_env)
        if not args.api_key:
            parser.error(f"--api-key-env: the environment variable {args.api_key_env} is not set")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_server(
        lambda: start(
            args.upstream,
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            max_message_bytes=args.max_message_bytes,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
        ),
        "backend_openai",
        args.log_level,
    )


if __name__ == "__main__":
    main()
