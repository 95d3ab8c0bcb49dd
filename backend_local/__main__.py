"""`python -m backend_local --model PATH [--port 50051] [--model-id ID]`

Serves a GGUF model (mistral.rs, CPU, in this process) as a ChatService. Get the demo model with
`python -m backend_local.fetch`, which prints its path. Runs until SIGINT or SIGTERM; logs one
JSON object per line to stderr.
"""

from __future__ import annotations

import argparse
import os

from backend_local.server import DEFAULT_MAX_TOKENS, DEFAULT_MAX_WAITING, start
from runinfra.serving import add_server_arguments, run_server


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="backend_local", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--model",
        default=os.environ.get("BACKEND_LOCAL_MODEL"),
        help="path of a GGUF model file (default: $BACKEND_LOCAL_MODEL)",
    )
    parser.add_argument(
        "--model-id", help="the id ListModels and requests use (default: the file name)"
    )
    parser.add_argument(
        "--max-waiting",
        type=int,
        default=DEFAULT_MAX_WAITING,
        help="requests that wait while one runs; more are refused (RESOURCE_EXHAUSTED)",
    )
    parser.add_argument(
        "--max-output-tokens",
        type=_positive,
        default=DEFAULT_MAX_TOKENS,
        help="output token limit of a request that sets none",
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        help="CPU threads the engine computes on (default: one per core)",
    )
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (or BACKEND_LOCAL_MODEL) is required")
    if not os.path.isfile(args.model):
        parser.error(f"--model: no such file: {args.model}")
    if args.max_waiting < 0:
        parser.error("--max-waiting must be at least 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_server(
        lambda: start(
            args.model,
            model_id=args.model_id,
            host=args.host,
            port=args.port,
            max_waiting=args.max_waiting,
            default_max_tokens=args.max_output_tokens,
            max_message_bytes=args.max_message_bytes,
            threads=args.threads,
        ),
        "backend_local",
        args.log_level,
    )


if __name__ == "__main__":
    main()
