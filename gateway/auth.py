"""API keys: where they come from and how a presented key is checked.

Keys come from GATEWAY_API_KEYS (comma-separated) and/or a file with one key a
line (GATEWAY_API_KEYS_FILE), re-read when it changes, so keys rotate without a
restart. Keys are kept only as SHA-256 digests and compared in constant time; a
request's tenant is a short digest of its key, never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("gateway")
_RELOAD_EVERY = 1.0  # seconds between checks of the key file's mtime


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def tenant_of(key: str) -> str:
    """A stable, non-reversible name for the holder of `key` (for scoping and logs)."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


class ApiKeys:
    def __init__(self, keys: Iterable[str] = (), file: str | None = None) -> None:
        self._static = [_digest(k) for k in (k.strip() for k in keys) if k]
        self._file = Path(file) if file else None
        self._file_digests: list[bytes] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload(force=True)

    @property
    def configured(self) -> bool:
        return bool(self._static or self._file)

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._file is None or (not force and now - self._checked < _RELOAD_EVERY):
            return
        self._checked = now
        try:
            mtime = os.stat(self._file).st_mtime
        except OSError:
            self._file_digests, self._mtime = [], None  # a missing file grants nothing
            return
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                lines = self._file.read_text(encoding="utf-8").splitlines()
            except (OSError, ValueError) as exc:  # unreadable, or not UTF-8: grants nothing
                self._file_digests = []
                log.error(
                    "API keys file unreadable: no key from it is accepted until it is fixed",
                    extra={"fields": {"file": str(self._file), "error": type(exc).__name__}},
                )
                return
            self._file_digests = [_digest(k.strip()) for k in lines if k.strip()]

    def check(self, presented: str) -> bool:
        """Whether `presented` is a valid key; every known digest is compared (constant time)."""
        self._reload()
        digest = _digest(presented)
        ok = False
        for known in (*self._static, *self._file_digests):
            ok |= hmac.compare_digest(known, digest)
        return ok
