"""Micro-benchmark of id generation: the keyed permutation (runinfra.ids, the gateway's
ids) against the bare counter it replaced. Prints nanoseconds per id; no assertion.

    python bench/ids.py
"""

from __future__ import annotations

import itertools
import secrets
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runinfra.ids import new_id

_PROCESS = secrets.token_hex(10)
_COUNTER = itertools.count(1)


def counter_id(prefix: str, separator: str = "_") -> str:
    """The previous scheme: the counter in the clear."""
    return f"{prefix}{separator}{_PROCESS}{next(_COUNTER):012x}"


def per_id_ns(make: object, number: int = 200_000) -> float:
    best = min(timeit.repeat(lambda: make("req"), number=number, repeat=5))  # type: ignore[operator]
    return best / number * 1e9


def main() -> None:
    bare = per_id_ns(counter_id)
    keyed = per_id_ns(new_id)
    print(f"bare counter          {bare:8.0f} ns/id")
    print(f"keyed permutation     {keyed:8.0f} ns/id  (+{keyed - bare:.0f} ns)")
    print(f"ids per request ~4:   +{4 * (keyed - bare) / 1000:.1f} us per request")


if __name__ == "__main__":
    main()
