"""API keys: static and file-based, rotation without restart, digests only."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gateway.auth import ApiKeys, tenant_of


def test_static_keys() -> None:
    keys = ApiKeys(["sk-one", " sk-two ", ""])
    assert keys.configured
    assert keys.check("sk-one") and keys.check("sk-two")
    assert not keys.check("sk-three") and not keys.check("")


def test_no_keys_configured() -> None:
    keys = ApiKeys()
    assert not keys.configured
    assert not keys.check("anything")


def test_key_file_rotates_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("sk-old\n")
    keys = ApiKeys(file=str(path))
    assert keys.check("sk-old")
    path.write_text("sk-new\n\n")
    future = time.time() + 5
    os.utime(path, (future, future))  # a new mtime, whatever the clock's resolution
    keys._checked = 0.0  # skip the once-a-second throttle
    assert keys.check("sk-new")
    assert not keys.check("sk-old")


def test_missing_key_file_grants_nothing(tmp_path: Path) -> None:
    keys = ApiKeys(file=str(tmp_path / "absent"))
    assert keys.configured
    assert not keys.check("")


def test_tenant_is_stable_and_hides_the_key() -> None:
    assert tenant_of("sk-secret") == tenant_of("sk-secret")
    assert tenant_of("sk-secret") != tenant_of("sk-other")
    assert "secret" not in tenant_of("sk-secret")
