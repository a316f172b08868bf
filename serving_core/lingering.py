"""Lingering close (as nginx does it) for responses sent before the request body has all arrived.

uvicorn's httptools protocol closes the socket as soon as a ``Connection: close`` response is complete. When
the app answered early (413 from Content-Length or while streaming, 503 overloaded, any error raised before
the body was read), the rest of the body is still arriving: closing a socket with unread data makes the
kernel answer with RST, and a client that sends its whole body before reading (Python's urllib) gets
ECONNRESET instead of the response. On a keep-alive connection uvicorn instead parses and drops the rest of
the body, however large, and re-arms no idle timeout, so a client that stops mid-body holds it open.

``LingeringHttpToolsProtocol`` (uvicorn's ``http=`` class) changes only requests whose body is still arriving
when the response starts: the response says ``Connection: close``; once it is written the write side is shut
down (the client sees the response, then EOF) and what the client still sends is read and dropped until it
closes, or ``LINGER_MAX_BYTES`` have been dropped, or it has been idle ``LINGER_IDLE_SECONDS``, or
``LINGER_TOTAL_SECONDS`` have passed; then the socket is closed. Requests whose body was read, or that have
none, keep uvicorn's keep-alive behaviour. A graceful shutdown closes lingering connections at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# Bounds on what a lingering connection may still cost, after its answer is out. The defaults are nginx's
# (lingering_time 30 s, lingering_timeout 5 s); 64 MiB covers the rest of any body a client sent in good faith
# (three times the default MAX_BODY_BYTES) and caps what one that declared gigabytes makes the worker read.
LINGER_MAX_BYTES = 64 * 1024 * 1024
LINGER_IDLE_SECONDS = 5.0
LINGER_TOTAL_SECONDS = 30.0


class _CycleTransport(asyncio.Transport):
    """The transport one request cycle writes to: the connection's own, except that closing it lingers when
    the request body is still arriving. Only the cycle has it: the protocol's own closes (graceful shutdown,
    keep-alive timeout, a malformed request) stay immediate."""

    def __init__(self, protocol: LingeringHttpToolsProtocol, cycle: RequestResponseCycle) -> None:
        super().__init__()
        self._protocol = protocol
        self._cycle = cycle
        self._transport = protocol.transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def close(self) -> None:
        self._protocol.close_after_response(self._cycle)


def _close_when_body_unread(cycle: RequestResponseCycle, app: ASGIApp) -> ASGIApp:
    async def app_closing_early(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_closing_early(message: Message) -> None:
            if message["type"] == "http.response.start" and cycle.more_body:
                cycle.keep_alive = False  # uvicorn then writes "connection: close" and closes when done
            await send(message)

        await app(scope, receive, send_closing_early)

    return app_closing_early


class LingeringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the lingering close of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lingering = False
        self._discarded = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._total_timer: asyncio.TimerHandle | None = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGIApp) -> None:
        cycle.transport = _CycleTransport(self, cycle)
        super()._start_asgi_task(cycle, _close_when_body_unread(cycle, app))

    def close_after_response(self, cycle: RequestResponseCycle) -> None:
        transport = self.transport
        # Only the newest request can have its body still arriving; an older one closing ends the connection.
        if cycle is not self.cycle or not cycle.more_body or transport.is_closing():
            transport.close()
            return
        self._lingering = True
        if transport.can_write_eof():  # TLS cannot half-close: it then lingers without
            transport.write_eof()  # the FIN follows the response once it is flushed
        self.flow.resume_reading()
        self._idle_timer = self.loop.call_later(LINGER_IDLE_SECONDS, transport.close)
        self._total_timer = self.loop.call_later(LINGER_TOTAL_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)
            return
        self._discarded += len(data)
        if self._discarded > LINGER_MAX_BYTES:
            self.transport.close()
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = self.loop.call_later(LINGER_IDLE_SECONDS, self.transport.close)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._lingering:
            self._unset_keepalive_if_required()  # the linger timers bound the connection instead

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._idle_timer, self._total_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)
