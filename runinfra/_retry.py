"""The retry policy, in one place: which failure of which call is tried again, and when.

- A replay-safe call (non-streaming with an idempotency key, or a GET) is retried on any
  transient failure: no connection, a broken one, 408, 409, 429 and 5xx, as the server's
  `x-should-retry` allows.
- Any other call is retried only when it provably never reached the server: the connection
  was refused or never opened, so no byte of the request was sent.
- A stream is never retried once its request has been sent.
Waits: the server's `retry-after` when it gives one (up to a minute), otherwise jittered
exponential backoff; `max_retries` bounds the attempts.
"""

from __future__ import annotations

import random

from runinfra.errors import APIConnectionError, RunInfraError, StreamError

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before retry number `attempt + 1`: the server's `retry-after` if it gave a
    sane one, else 0.5 s doubling up to 8 s, less up to a quarter of random jitter."""
    if retry_after is not None and retry_after <= MAX_RETRY_AFTER:
        return retry_after
    return min(MAX_BACKOFF, INITIAL_BACKOFF * 2.0**attempt) * (1 - 0.25 * random.random())


def retry_delay(
    error: RunInfraError, *, attempt: int, max_retries: int, replay_safe: bool
) -> float | None:
    """Seconds to wait before trying again after `error` on attempt `attempt` (0-based), or
    None: give up and raise it."""
    if attempt >= max_retries or isinstance(error, StreamError) or not error.retryable:
        return None
    never_sent = isinstance(error, APIConnectionError) and not error.request_sent
    if not (replay_safe or never_sent):
        return None
    return backoff(attempt, error.retry_after)
