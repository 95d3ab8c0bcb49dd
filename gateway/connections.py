"""Bounds on slow connections, on top of uvicorn's: a deadline for a request's headers.

uvicorn times out idle keep-alive connections (`timeout_keep_alive`), but not a client that
sends its headers slowly: one byte a second keeps a connection (and a file descriptor) for
ever. `HeaderDeadlineH11` closes a connection whose request line and headers are not all in
within `header_timeout` seconds of the connection opening, or of the first byte of a
following request on a kept-alive connection. (The body has its own deadline:
`GATEWAY_BODY_TIMEOUT`, answered 408 by the endpoint.)
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineH11(H11Protocol):
    header_timeout = 10.0  # set from the settings by the composition root
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # a request has begun and its headers are not all in
        else:
            self._disarm()  # they are (a request that arrives whole never sets a timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
