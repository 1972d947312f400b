"""uvicorn's h11 protocol with a deadline on each request head.

uvicorn times out an idle keep-alive connection, but any byte received cancels that timer and
nothing bounds the time a request head (request line and headers) may take: a client sending
one byte every few seconds, or a head without its blank line, holds a connection and a socket
for ever, and enough of them exhaust the server's file descriptors. Here every request head
must be complete within ``head_timeout`` seconds of the moment the server waits for it (the
connection opened, or the previous response sent), else the connection is closed. The body
has its own deadline in the application (``--body-timeout``, :mod:`safeload.serve.app`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeadDeadline(H11Protocol):
    """H11Protocol whose request heads must arrive within ``head_timeout`` seconds."""

    head_timeout = 30.0
    _head_timer: asyncio.TimerHandle | None = None
    _waiting_after: Any = None  # the cycle of the request before the head awaited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._head_arrived()

    def on_response_complete(self) -> None:
        self._arm()  # before uvicorn handles a pipelined request, which ends the wait at once
        super().on_response_complete()
        self._head_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_arrived(self) -> None:
        # uvicorn starts a new request cycle once h11 has parsed a whole head.
        if self.cycle is not self._waiting_after:
            self._disarm()

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol(head_timeout: float) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn (``http=``), with this head deadline."""
    return type("HeadDeadlineH11Protocol", (_HeadDeadline,), {"head_timeout": head_timeout})
