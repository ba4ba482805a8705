"""Broadcast to WebSocket clients: each message framed once, each client written once per turn.

The bus offers a published message to every subscriber's bounded queue (bus.py). A client
served by `FanoutProtocol` (api/wsserver.py) has an `Outbox` in place of a sending task: the
queue calls it when it stops being empty, and the outbox joins the clients due in this
event-loop turn (`Flusher`: one loop callback per turn for all of them). That callback takes
each one's queue whole (`Subscription.drain`), keeps what the client may get (the stream's
`select`: subscribed topics, snapshot floors, book sampling) and hands the frames to the
transport in one call. So per message and client there is a deque append and a cached-frame
lookup: no task wake-up, no ASGI `send`, no framing, no syscall. A burst of messages published
in one turn leaves in one write per client.

Slow consumers keep today's rule: while the transport's buffer is over its high-water mark the
outbox writes nothing, the client's queue fills up to its bound, later messages are dropped and
counted, a gap marker goes first when room returns, and a lag episode that lasts too long
closes the subscription ("slow consumer", close code 4008 in api/stream.py). The transport
calls back when it drains (`on_writable(True)`) and the outbox resumes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Protocol

from quantsaas.bus import Envelope, Gap, Subscription
from quantsaas.wsframe import text_frame

log = logging.getLogger(__name__)

SINK = "quantsaas.sink"
"""Key of the connection (a `Sink`) in the ASGI scope's `extensions` (api/wsserver.py)."""

FLUSH_FAILED = "flush failed"
"""Reason a subscription is closed with when writing to its client raised (a bug)."""

Select = Callable[[Envelope | Gap | str], Envelope | str | None]
"""The stream's choice for one queued item: the envelope or text to send, or None to skip."""


class Transport(Protocol):
    def is_closing(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    def writelines(self, data: list[bytes]) -> None: ...


class Sink(Protocol):
    """A WebSocket connection that takes ready-made frames (api/wsserver.FanoutProtocol): its
    transport, whether that is paused, and a hook it calls on `pause_writing` (False) and
    `resume_writing` (True).

    The outbox writes to the transport itself: a data frame must never follow a close frame,
    so whoever closes the connection closes the outbox first (api/stream.py does); every other
    way a connection ends closes the transport (`is_closing`)."""

    deflate_bits: int
    paused: bool
    transport: Transport
    on_writable: Callable[[bool], None] | None


class Counters(Protocol):
    messages_sent: int


class Flusher:
    """The event loop's one callback per turn that flushes every outbox woken in that turn
    (rather than a callback per client: one loop dispatch per turn, not one per socket)."""

    __slots__ = ("_loop", "_due", "__weakref__")

    _of_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Flusher] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[Outbox] = []

    @classmethod
    def running(cls) -> Flusher:
        """The flusher of the running event loop."""
        loop = asyncio.get_running_loop()
        flusher = cls._of_loop.get(loop)
        if flusher is None:
            flusher = cls._of_loop[loop] = cls(loop)
        return flusher

    def _flush(self) -> None:
        due, self._due = self._due, []
        for outbox in due:
            try:
                outbox.flush()
            except Exception:  # one client's failure must not stop the others' writes
                log.exception("websocket flush failed; closing that connection")
                outbox.subscription.close(FLUSH_FAILED)


class Outbox:
    """One client's way out: its queue, written to its socket once per event-loop turn."""

    __slots__ = (
        "subscription",
        "sink",
        "select",
        "counters",
        "bits",
        "_flusher",
        "_scheduled",
        "_open",
        "_paused",
        "_is_closing",
        "_write",
        "_writelines",
    )

    def __init__(
        self, subscription: Subscription, sink: Sink, select: Select, counters: Counters
    ) -> None:
        self.subscription = subscription
        self.sink = sink
        self.select = select
        self.counters = counters
        """`messages_sent` counts the messages handed to the transport (/metrics)."""
        self.bits = sink.deflate_bits
        self._flusher = Flusher.running()
        self._scheduled = False
        self._open = False
        self._paused = sink.paused
        # the hot path touches the outbox and the transport, not the protocol object
        transport = sink.transport
        self._is_closing = transport.is_closing
        self._write = transport.write
        self._writelines = transport.writelines

    def open(self) -> None:
        """Start writing: from now on the queue and the transport wake the outbox."""
        self._open = True
        self.subscription.waker = self.wake
        self.sink.on_writable = self._writable
        if self.subscription.pending:
            self.wake()

    def _writable(self, writable: bool) -> None:
        self._paused = not writable
        if writable:
            self.wake()

    def close(self) -> None:
        """Stop writing (the connection is closing); what is still queued is not sent."""
        self._open = False
        self.subscription.waker = None
        self.sink.on_writable = None

    def wake(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            flusher = self._flusher
            if not flusher._due:
                flusher._loop.call_soon(flusher._flush)
            flusher._due.append(self)

    def flush(self) -> None:
        """Write everything queued that the client may get, in order, in one call."""
        self._scheduled = False
        if not self._open or self._paused or self._is_closing():
            return  # a paused transport calls `_writable(True)` once it has drained
        select, bits, subscription = self.select, self.bits, self.subscription
        frames: list[bytes] = []
        append = frames.append
        while (batch := subscription.drain()) is not None:
            for item in batch:
                chosen = select(item)
                if chosen is None:
                    continue
                if isinstance(chosen, str):
                    append(text_frame(chosen.encode(), bits))
                else:
                    append((not bits and chosen.framed) or chosen.frame(bits))
        if frames:
            if len(frames) == 1:
                self._write(frames[0])
            else:
                self._writelines(frames)  # one writev on uvloop
            self.counters.messages_sent += len(frames)
