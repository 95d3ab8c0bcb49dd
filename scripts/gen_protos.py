"""Regenerate runinfra/chat/v1/ from protos/ (python scripts/gen_protos.py).

Runs the local grpc_tools.protoc with mypy-protobuf, so nothing is fetched. The output keeps
protoc's own package layout (runinfra/chat/v1/...), so no import is rewritten. The mypy
plugins are passed by path from beside this Python (a virtualenv's bin/), never looked up on
PATH, so the command works with the virtualenv inactive. `--out DIR` writes the tree under DIR
instead (the tests compare that with the committed code).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTOS = ["runinfra/chat/v1/chat_service.proto"]
GENERATED = "*_pb2*.py*"  # what protoc and its plugins write


def plugin(name: str) -> str:
    """`--plugin=protoc-gen-NAME=PATH` for a plugin installed beside this Python."""
    path = Path(sys.executable).parent / f"protoc-gen-{name}"
    if not path.exists():
        raise SystemExit(f"{path} is missing: pip install -e '.[dev]' (it brings mypy-protobuf)")
    return f"--plugin=protoc-gen-{name}={path}"


def generate(out: Path) -> list[Path]:
    """Generate the Python modules for PROTOS under `out`, in protoc's layout."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            plugin("mypy"),
            plugin("mypy_grpc"),
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *PROTOS,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        written = []
        for src in sorted(Path(tmp).rglob(GENERATED)):
            dst = out / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text())
            written.append(dst)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT)
    for path in generate(parser.parse_args().out):
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
