"""Ids for requests, responses and output items: unique, cheap, not secrets.

A random per-process part (new in every process, workers included) and a
counter: no two ids of any process collide, and making one costs no system
call. Nothing is looked up by these ids, so being guessable gives nothing away.
"""

from __future__ import annotations

import itertools
import secrets

_PROCESS = secrets.token_hex(10)
_COUNTER = itertools.count(1)


def new_id(prefix: str, separator: str = "_") -> str:
    """`<prefix>_<20 hex of this process><12 hex counter>`, e.g. `resp_…`, `msg_…`, `req_…`."""
    return f"{prefix}{separator}{_PROCESS}{next(_COUNTER):012x}"
