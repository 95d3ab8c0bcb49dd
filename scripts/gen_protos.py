"""Regenerate gateway/pb/ from protos/ (python scripts/gen_protos.py).

Runs the local grpc_tools.protoc with mypy-protobuf, so nothing is fetched;
imports between generated modules are rewritten to live in gateway.pb.
`--out DIR` writes elsewhere (the tests compare that with the committed code).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTOS = ["runinfra/chat/v1/chat_service.proto"]
PACKAGE = "gateway.pb"
_IMPORT = re.compile(r"^from runinfra\.chat\.v1 import ", re.MULTILINE)


def generate(out: Path) -> list[Path]:
    """Generate the Python modules for PROTOS, flattened into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *PROTOS,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        written = []
        for src in sorted(Path(tmp).rglob("*.py*")):
            text = _IMPORT.sub(f"from {PACKAGE} import ", src.read_text())
            dst = out / src.name
            dst.write_text(text)
            written.append(dst)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "gateway" / "pb")
    for path in generate(parser.parse_args().out):
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
