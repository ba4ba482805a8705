"""The WebSocket protocol uvicorn runs for `serve` (`uvicorn.Config(ws=FanoutProtocol)`).

uvicorn's sans-I/O protocol (websockets' `ServerProtocol` under an ASGI interface) with two
changes:

- a way out that skips ASGI: after the app has accepted the connection through ASGI as usual
  (so authentication, Origin checks and refusals stay the app's), the stream writes frames it
  made once for every client straight to the transport (api/fanout.py). The connection offers
  itself in the ASGI scope as `scope["extensions"][SINK]`; a server without it gets the plain
  ASGI path (api/stream.py), so the app runs on any ASGI server.
- permessage-deflate without context takeover in either direction, when the client offers it
  (browsers always do): the server compresses each message on its own, so one compressed frame
  serves every client with the same window size (`deflate_bits`, wsframe.py); the client also
  compresses each message on its own, so no connection keeps an inflate window between
  messages.

Why not picows as the server: it has no permessage-deflate and its own HTTP handshake outside
ASGI, so auth, tickets, Origin and the 44xx refusals would be written twice; what makes it fast
(frames made in C, synchronous sends, no task per message) is done here by framing once per
message and writing once per client per loop turn (bench/README.md has the figures).

Inbound frames, their size limit (1009), pings, pongs and the closing handshake stay
uvicorn's and websockets'. The outbox writes to the transport itself, so a close goes through
the stream session, which closes the outbox first (api/fanout.py `Sink`); uvicorn closes the
transport on every other ending (the client's close, a protocol error, a keepalive timeout).
The subclass relies on these attributes of uvicorn's `WebSocketsSansIOProtocol` (uvicorn
0.55): `conn`, `transport`, `scope`, `response`, and the `pause_writing`/`resume_writing`/
`handle_connect` methods; tests/api/test_wsserver.py and test_stream.py fail if one goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.http11 import Request
from websockets.server import ServerProtocol

from quantsaas.api.fanout import SINK
from quantsaas.wsframe import COMPRESS_LEVEL, PLAIN


def deflate_offer() -> ServerPerMessageDeflateFactory:
    """What the server accepts: permessage-deflate with no context takeover either way; the
    window is the client's choice (15 unless it asks for less)."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        compress_settings={"level": COMPRESS_LEVEL},
    )


def negotiated_bits(extensions: list[Any]) -> int:
    """The server window of the negotiated permessage-deflate, or PLAIN without one."""
    for extension in extensions:
        if isinstance(extension, PerMessageDeflate):
            assert extension.local_no_context_takeover  # deflate_offer() always asks for it
            return extension.local_max_window_bits
    return PLAIN


class FanoutProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol plus a direct write path (the `Sink` of api/fanout.py)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = ServerProtocol(
            extensions=[deflate_offer()] if config.ws_per_message_deflate else [],
            max_size=config.ws_max_size,
            logger=logging.getLogger("uvicorn.error"),
        )
        self.deflate_bits = PLAIN
        self.paused = False
        self.on_writable: Callable[[bool], None] | None = None
        """Called with False on `pause_writing`, True on `resume_writing` (the stream's outbox)."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.deflate_bits = negotiated_bits(self.conn.extensions)
            self.scope["extensions"][SINK] = self  # type: ignore[assignment]

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True
        if self.on_writable is not None:
            self.on_writable(False)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False
        if self.on_writable is not None:
            self.on_writable(True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_writable = None
        super().connection_lost(exc)
