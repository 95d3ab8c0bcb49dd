"""Ids for requests, responses and output items: unique, cheap, and unguessable.

A random per-process part (new in every process, workers included) and a per-process
counter passed through a keyed permutation: no two ids of any process collide (a
permutation of distinct counters gives distinct values), and the ids do not reveal how
many requests the process has served (the key is random, made at start, never stored).

The permutation is a 3-round Feistel network over 48 bits (two 24-bit halves) whose round
function is keyed BLAKE2b: a pseudorandom permutation against anyone who sees ids, however
many (Luby-Rackoff). One id costs a few microseconds more than a bare counter, a few per
request (`python bench/ids.py` measures it). Any service may use it; the gateway does.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets

_PROCESS = secrets.token_hex(10)
_COUNTER = itertools.count(1)
_HALF = 24
_MASK = (1 << _HALF) - 1
_ROUNDS = tuple(hashlib.blake2b(key=secrets.token_bytes(32), digest_size=3) for _ in range(3))


def permute(counter: int) -> int:
    """The counter's image under this process's keyed permutation of 0 .. 2**48 - 1."""
    left, right = (counter >> _HALF) & _MASK, counter & _MASK
    for keyed in _ROUNDS:
        mix = keyed.copy()
        mix.update(right.to_bytes(3, "big"))
        left, right = right, left ^ int.from_bytes(mix.digest(), "big")
    return (left << _HALF) | right


def new_id(prefix: str, separator: str = "_") -> str:
    """`<prefix>_<20 hex of this process><12 hex>`, e.g. `resp_…`, `msg_…`, `req_…`."""
    return f"{prefix}{separator}{_PROCESS}{permute(next(_COUNTER)):012x}"
