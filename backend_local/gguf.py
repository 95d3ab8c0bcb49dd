"""Reading a GGUF file's metadata (the key-value header), without loading its tensors.

The format: magic `GGUF`, a version, the tensor count, the key-value count, then the key-value
pairs (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md). Only the header is read; the
large tokenizer arrays in it are skipped unless asked for.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),  # uint8
    1: ("<b", 1),  # int8
    2: ("<H", 2),  # uint16
    3: ("<h", 2),  # int16
    4: ("<I", 4),  # uint32
    5: ("<i", 4),  # int32
    6: ("<f", 4),  # float32
    7: ("<?", 1),  # bool
    10: ("<Q", 8),  # uint64
    11: ("<q", 8),  # int64
    12: ("<d", 8),  # float64
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 * 1024 * 1024  # a chat template is kilobytes; more means a corrupt file


class GGUFError(ValueError):
    """Not a GGUF file, or a truncated or corrupt header."""


@dataclass(frozen=True, slots=True)
class Metadata:
    """What backend_local needs from a model file's header."""

    version: int
    values: dict[str, object]

    @property
    def name(self) -> str | None:
        value = self.values.get("general.name")
        return value if isinstance(value, str) else None

    @property
    def architecture(self) -> str | None:
        value = self.values.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def chat_template(self) -> str | None:
        value = self.values.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def context_length(self) -> int | None:
        value = self.values.get(f"{self.architecture}.context_length")
        return value if isinstance(value, int) else None


def template_supports_tools(template: str | None) -> bool:
    """Whether a chat template renders tool definitions (HF templates read a `tools`
    variable; SmolLM2's and other templates without tool calling never mention it)."""
    return template is not None and "tools" in template


def read_metadata(path: str | Path, wanted: Collection[str] | None = None) -> Metadata:
    """The header's key-value pairs (only `wanted` keys kept, if given; arrays of the
    tokenizer are skipped unless wanted). Raises GGUFError for anything that is not GGUF."""
    with open(path, "rb") as f:
        return _Reader(f).metadata(wanted)


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFError("truncated GGUF header")
        return data

    def _unpack(self, fmt: str, size: int) -> object:
        return struct.unpack(fmt, self._read(size))[0]

    def _u32(self) -> int:
        return int(struct.unpack("<I", self._read(4))[0])

    def _u64(self) -> int:
        return int(struct.unpack("<Q", self._read(8))[0])

    def _string(self) -> str:
        n = self._u64()
        if n > _MAX_STRING:
            raise GGUFError(f"implausible GGUF string length {n}")
        return self._read(n).decode("utf-8", errors="replace")

    def _skip_string(self) -> None:
        n = self._u64()
        if n > _MAX_STRING:
            raise GGUFError(f"implausible GGUF string length {n}")
        self.f.seek(n, 1)

    def _value(self, kind: int, keep: bool) -> object:
        if kind in _SCALARS:
            fmt, size = _SCALARS[kind]
            return self._unpack(fmt, size)
        if kind == _STRING:
            if keep:
                return self._string()
            self._skip_string()
            return None
        if kind == _ARRAY:
            item_kind, count = self._u32(), self._u64()
            if item_kind in _SCALARS and not keep:
                self.f.seek(_SCALARS[item_kind][1] * count, 1)
                return None
            items = [self._value(item_kind, keep) for _ in range(count)]
            return items if keep else None
        raise GGUFError(f"unknown GGUF value type {kind}")

    def metadata(self, wanted: Collection[str] | None) -> Metadata:
        if self._read(4) != MAGIC:
            raise GGUFError("not a GGUF file (bad magic)")
        version = self._u32()
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        self._u64()  # tensor count
        values: dict[str, object] = {}
        for _ in range(self._u64()):
            key = self._string()
            kind = self._u32()
            keep = (wanted is None and not key.startswith("tokenizer.ggml.")) or (
                wanted is not None and key in wanted
            )
            value = self._value(kind, keep)
            if keep:
                values[key] = value
        return Metadata(version, values)
