"""The WebSocket stream at /ws.

Client requests (JSON text frames; an optional `id` is echoed in the reply):
    {"op": "subscribe", "channels": ["trades", "book", "ticker"], "symbols": ["BTC/USD"],
     "venues": ["sim"]}                               venues optional: default every venue
    {"op": "unsubscribe", "channels": [...], "symbols": [...]}
    {"op": "ping"}                                    -> {"type": "pong", "server_time": ns}

When a data source goes down or comes back (a venue, or the Redis relay of an API process), every
client gets `{"type": "status", "source": ..., "state": "down"|"live", "reason": ...}`; the
`info` message lists the sources that are down (`down`).

Every data message carries `channel`, `venue`, `symbol`, `seq` (per stream, gap-free while the
client keeps up), `timestamp`/`datetime` (venue time, ms), `ts_event` and `ts_recv` (ns). A `book`
subscription starts with a `snapshot` whose `seq` is the stream position; `delta`s follow with
higher `seq`. A client too slow to keep up first loses messages (a `gap` message tells how many,
and a book stream gets a fresh snapshot), then is closed with code 4008.

A bad request gets `{"type": "error", ...}` and the connection stays open. Abuse closes it:
1009 for a frame over the size limit, 1008 for too many messages per second or too many
invalid ones.

Access (api/auth.py): the handshake carries `X-API-Key` (or `Authorization: Bearer`), or
`?ticket=` from POST /api/v1/ws-ticket for browsers; a browser's Origin must be allowed. A refused
handshake gets an `error` message and close code 4401 (credentials), 4403 (origin) or 4429 (too
many connections or handshakes). Each subscription is checked against the caller's tier: what
the tier includes is subscribed, the rest is named in an `error` with code `tier_required` (its
`streams`, and the `channel`/`venue`/`symbol` of the first). A tier with `book_interval_ms`
gets a book `snapshot` at most that often instead of deltas. Revoking the key (or disabling the
user) closes the socket with 4001, ending the session it was opened under (logout, password
change) with 4002, a tier change with 4003 (connect again: the new tier applies), in every
process (api/auth.py OpenSockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from quantsaas.accounts.tiers import Tier
from quantsaas.accounts.views import Principal
from quantsaas.analytics.live import GREEKS
from quantsaas.api.access import tier_denial
from quantsaas.api.auth import (
    admit_websocket,
    authenticate_websocket,
    client_ip,
    ready_guard,
    release_websocket,
)
from quantsaas.api.fanout import FLUSH_FAILED, SINK, Outbox, Sink
from quantsaas.api.problems import Problem
from quantsaas.bus import SLOW_CONSUMER, Bus, BusLimits, Envelope, Gap, Subscription, Topic
from quantsaas.channels import OPTIONS
from quantsaas.config import Settings
from quantsaas.errors import SubscriptionClosed, UnknownInstrument, quote
from quantsaas.model import now_ns
from quantsaas.readmodel import ReadModel, resolve
from quantsaas.status import StatusWatcher
from quantsaas.symbols import chains
from quantsaas.wire import JSON, encode, gap_message

CLOSE_POLICY = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_WAIT_S = 10.0
CLOSE_SLOW_CONSUMER = 4008
CLOSE_REVOKED = 4001
CLOSE_BY_STATUS = {401: 4401, 403: 4403, 429: 4429, 503: 1013}
MAX_TOPICS = 400
MAX_LIST = 100
BY_UNDERLYING = frozenset({OPTIONS, GREEKS})
"""Channels published under an option chain's underlying (options by the engine, greeks by the
analytics): a symbol names the chain (quantsaas.symbols.chains)."""

log = logging.getLogger(__name__)


class RequestError(Exception):
    def __init__(self, code: str, message: str, **fields: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


def _string_list(request: JSON, field: str, required: bool = True) -> list[str]:
    value = request.get(field)
    if value is None and not required:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RequestError("bad_request", f"'{field}' must be a non-empty list of strings")
    if len(value) > MAX_LIST:
        raise RequestError("bad_request", f"'{field}' may hold at most {MAX_LIST} entries")
    return value


class StreamCounters:
    """Read by the /metrics collector; the hot path only increments integers."""

    __slots__ = ("clients", "connections", "messages_sent")

    def __init__(self) -> None:
        self.clients = 0
        self.connections = 0
        self.messages_sent = 0


class StreamSession:
    """One client connection: parses requests, owns a bus subscription, sends in order.

    It sees the process only through the bus (its subscription) and the read model (the
    instruments, the channels and each topic's initial state).
    """

    def __init__(
        self,
        websocket: WebSocket,
        bus: Bus,
        read_model: ReadModel,
        settings: Settings,
        counters: StreamCounters | None = None,
        principal: Principal | None = None,
        tier: Tier | None = None,
        status: StatusWatcher | None = None,
    ) -> None:
        self.websocket = websocket
        self.status = status
        self.bus = bus
        self.read_model = read_model
        self.settings = settings
        self.counters = counters or StreamCounters()
        self.principal = principal or Principal(None, None, "", False, None)
        self.tier = tier
        self.max_topics = MAX_TOPICS if tier is None else min(MAX_TOPICS, tier.ws_subscriptions)
        self.max_inbound_per_s = settings.ws_max_inbound_per_s
        if tier is not None:
            self.max_inbound_per_s = min(self.max_inbound_per_s, tier.ws_inbound_per_s)
        self.book_interval_ns = 0 if tier is None else tier.book_interval_ms * 1_000_000
        self._last_sample_ns: dict[Topic, int] = {}
        self._sample_due: set[Topic] = set()
        self._revoked = asyncio.Event()
        self._revoked_close = (CLOSE_REVOKED, "credentials revoked")
        limits = BusLimits(
            queue_size=settings.ws_queue_size,
            max_lag_s=settings.ws_max_lag_s,
            max_drops=settings.ws_queue_size * 16,
        )
        self.subscription: Subscription = bus.subscribe(limits=limits)
        self._snapshot_seq: dict[Topic, int] = {}
        self._pending: set[Topic] = set()
        self._bad_messages = 0
        self._window_start = time.monotonic()
        self._window_count = 0

    async def serve(self) -> None:
        await self.websocket.accept()
        counters = self.counters
        counters.clients += 1
        counters.connections += 1
        try:
            await self._serve()
        finally:
            counters.clients -= 1

    async def _serve(self) -> None:
        self.reply(
            {
                "type": "info",
                "server_time": now_ns(),
                "channels": sorted(self.read_model.channels()),
                "symbols": sorted({symbol for _, symbol in self.read_model.instruments()}),
                "venues": sorted({venue for venue, _ in self.read_model.instruments()}),
                "down": [] if self.status is None else self.status.down(),
            }
        )
        receiver = asyncio.create_task(self._receive_loop(), name="ws-receiver")
        evicted = asyncio.create_task(self.subscription.wait_closed(), name="ws-evicted")
        revoked = asyncio.create_task(self._revoked.wait(), name="ws-revoked")
        tasks = {receiver, evicted, revoked}
        sink: Sink | None = self.websocket.scope.get("extensions", {}).get(SINK)
        outbox = None
        if sink is not None:  # frames made once, written once per loop turn (api/fanout.py)
            outbox = Outbox(self.subscription, sink, self._outgoing, self.counters)
            outbox.open()
        else:  # any other ASGI server: a task sends each message through ASGI
            tasks.add(asyncio.create_task(self._send_loop(), name="ws-sender"))
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if outbox is not None:
                outbox.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        close: tuple[int, str] | None = None
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                log.error("websocket session failed", exc_info=failure)
                close = (CLOSE_INTERNAL_ERROR, "internal error")
            elif task is receiver:
                close = receiver.result()
            elif task is revoked:
                close = self._revoked_close
        if self.subscription.closed_reason == SLOW_CONSUMER:
            close = (CLOSE_SLOW_CONSUMER, SLOW_CONSUMER)
        elif self.subscription.closed_reason == FLUSH_FAILED:
            close = (CLOSE_INTERNAL_ERROR, "internal error")
        self.subscription.close("client gone")
        if close is not None:
            # a client that stopped reading holds up the close frame too: wait a while for it
            # to drain, then give up and let the server drop the connection
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._close(*close), timeout=CLOSE_WAIT_S)

    def revoke(self, code: int = CLOSE_REVOKED, reason: str = "credentials revoked") -> None:
        """The credentials behind this connection stopped being valid: close it (api/auth.py
        OpenSockets says with which code)."""
        self._revoked_close = (code, reason)
        self._revoked.set()

    def reply(self, message: JSON) -> None:
        self.subscription.put_local(encode(message))

    async def _close(self, code: int, reason: str) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code, reason)

    async def _receive_loop(self) -> tuple[int, str] | None:
        """Read requests until the client leaves (None) or must be closed (code, reason)."""
        while True:
            try:
                frame = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return None
            if frame["type"] == "websocket.disconnect":
                return None
            if self._over_rate():
                return (CLOSE_POLICY, "too many messages per second")
            text = frame.get("text")
            request: Any = None
            problem: RequestError | None = None
            if text is None:
                problem = RequestError("bad_request", "send JSON text frames")
            else:
                try:
                    request = orjson.loads(text)
                except orjson.JSONDecodeError:
                    problem = RequestError("bad_json", "message is not valid JSON")
            if problem is None:
                try:
                    self._handle(request)
                except RequestError as exc:
                    problem = exc
            if problem is not None:
                self._bad_messages += 1
                error: JSON = {
                    "type": "error",
                    "code": problem.code,
                    "message": problem.message,
                    **problem.fields,
                }
                if isinstance(request, dict) and "id" in request:
                    error["id"] = request["id"]
                self.reply(error)
                if self._bad_messages >= self.settings.ws_max_bad_messages:
                    return (CLOSE_POLICY, "too many invalid messages")

    def _over_rate(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        return self._window_count > self.max_inbound_per_s

    def _handle(self, request: Any) -> None:
        if not isinstance(request, dict):
            raise RequestError("bad_request", "a request must be a JSON object")
        op = request.get("op")
        reply_id = {"id": request["id"]} if "id" in request else {}
        if op == "ping":
            self.reply({"type": "pong", "server_time": now_ns(), **reply_id})
        elif op == "subscribe":
            topics, denied = self._entitled(self._topics(request))
            if len(self.subscription.topics | set(topics)) > self.max_topics:
                raise RequestError("too_many_subscriptions", f"at most {self.max_topics} streams")
            if topics:
                self._subscribe(topics, reply_id)
            if denied:
                (channel, venue, symbol), reason = denied[0]
                error = RequestError(
                    "tier_required", reason, channel=channel, venue=venue, symbol=symbol
                )
                if not topics:
                    raise error
                # the rest was subscribed: not a bad message, an answer about part of it
                self.reply(
                    {
                        "type": "error",
                        "code": error.code,
                        "message": error.message,
                        **error.fields,
                        "streams": [list(topic) for topic, _ in denied],
                        **reply_id,
                    }
                )
        elif op == "unsubscribe":
            topics = self._topics(request)
            self.subscription.remove(topics)
            for topic in topics:
                self._snapshot_seq.pop(topic, None)
                self._pending.discard(topic)
            self.reply({"type": "unsubscribed", "streams": [list(t) for t in topics], **reply_id})
        else:
            raise RequestError(
                "unknown_op", f"unknown op {quote(str(op))}; use subscribe, unsubscribe, ping"
            )

    def _topics(self, request: JSON) -> list[Topic]:
        channels = _string_list(request, "channels")
        known = self.read_model.channels()
        unknown = [channel for channel in channels if channel not in known]
        if unknown:
            raise RequestError(
                "unknown_channel",
                f"unknown channel(s) {quote(', '.join(unknown))}; use {sorted(known)}",
            )
        symbols = _string_list(request, "symbols")
        venues: list[str | None] = [*_string_list(request, "venues", required=False)] or [None]
        direct = [channel for channel in channels if channel not in BY_UNDERLYING]
        chained = [channel for channel in channels if channel in BY_UNDERLYING]
        instruments = self.read_model.instruments()
        keys: list[tuple[str, str]] = []
        chain_keys: list[tuple[str, str]] = []
        for symbol in symbols:
            for venue in venues:
                try:
                    named = resolve(instruments, symbol, venue)
                except UnknownInstrument as exc:
                    if direct:
                        raise RequestError("unknown_symbol", str(exc)) from None
                    named = []
                keys.extend(instrument.key for instrument in named)
                if chained:
                    found = [i.key for i in named if i.option is None]
                    found += chains(instruments.values(), symbol, venue)
                    if not found:
                        raise RequestError("unknown_symbol", f"no option chain on {quote(symbol)}")
                    chain_keys.extend(found)
        return [(channel, *key) for channel in direct for key in dict.fromkeys(keys)] + [
            (channel, *key) for channel in chained for key in dict.fromkeys(chain_keys)
        ]

    def _entitled(self, topics: list[Topic]) -> tuple[list[Topic], list[tuple[Topic, str]]]:
        """The topics the caller's tier includes, and the others with the reason."""
        if self.tier is None:
            return topics, []
        allowed: list[Topic] = []
        denied: list[tuple[Topic, str]] = []
        for topic in topics:
            channel, venue, symbol = topic
            reason = tier_denial(self.tier, channel, venue, [symbol])
            if reason is None:
                allowed.append(topic)
            else:
                denied.append((topic, reason))
        return allowed, denied

    def _subscribe(self, topics: list[Topic], reply_id: JSON) -> None:
        fresh = [topic for topic in topics if topic not in self.subscription.topics]
        self.subscription.add(fresh)
        self.reply({"type": "subscribed", "streams": [list(t) for t in topics], **reply_id})
        for topic in fresh:
            if self.book_interval_ns and topic[0] == "book":
                self._last_sample_ns[topic] = now_ns()
            self._queue_initial_state(topic)

    def _queue_initial_state(self, topic: Topic) -> None:
        """Queue the topic's current state (a book snapshot) at the stream's current seq;
        published messages up to that seq are then skipped for this client. A state still
        pending (a relayed book before its first snapshot) holds the topic's messages back."""
        initial = self.read_model.initial(topic)
        if initial is None:
            return  # nothing yet: the first published message will start the stream
        if initial.pending:
            self._pending.add(topic)
            return
        self._pending.discard(topic)
        self._snapshot_seq[topic] = initial.seq
        for message in initial.messages:
            self.subscription.put_local(message)

    async def _send_loop(self) -> None:
        """The way out on an ASGI server without `SINK`: one ASGI send per message."""
        subscription = self.subscription
        send_event = self.websocket.send
        counters = self.counters
        try:
            while True:
                item: Envelope | Gap | str | None = await subscription.get()
                # send everything already queued before waiting again: one wake-up per burst
                while item is not None:
                    chosen = self._outgoing(item)
                    if chosen is not None:
                        text = chosen if isinstance(chosen, str) else chosen.text()
                        await send_event({"type": "websocket.send", "text": text})
                        counters.messages_sent += 1
                    item = subscription.get_nowait()
        except (SubscriptionClosed, WebSocketDisconnect, RuntimeError, OSError):
            return

    def _outgoing(self, item: Envelope | Gap | str) -> Envelope | str | None:
        """What to send for a queued item (the envelope, whose frame is shared, or a text of
        this client's own), or None when the client must not get it."""
        if isinstance(item, Envelope):
            topic = item.topic
            if topic not in self.subscription.topics:
                return None
            if self.book_interval_ns and topic[0] == "book":
                self._sample_book(topic)
                return None
            pending = self._pending
            if pending and topic in pending:  # no initial state yet: look again
                self._queue_initial_state(topic)
                if topic in pending:
                    return None
            floors = self._snapshot_seq
            if floors and topic in floors:  # messages the initial state already covers
                if item.seq <= floors[topic]:
                    return None
                del floors[topic]  # passed: the topic's later messages all go out
            return item
        if isinstance(item, Gap):
            if item.topic in self.subscription.topics:
                self._queue_initial_state(item.topic)
            return encode(gap_message(item.topic, item.missed))
        return item

    def _sample_book(self, topic: Topic) -> None:
        """A sampled book stream: no deltas; a fresh snapshot once the interval has passed, and
        one more at the end of an interval with changes, so the last state always arrives."""
        wait_ns = self._last_sample_ns.get(topic, 0) + self.book_interval_ns - now_ns()
        if wait_ns <= 0:
            self._send_sample(topic)
        elif topic not in self._sample_due:
            self._sample_due.add(topic)
            asyncio.get_running_loop().call_later(wait_ns / 1e9, self._send_sample, topic)

    def _send_sample(self, topic: Topic) -> None:
        self._sample_due.discard(topic)
        if topic in self.subscription.topics and self.subscription.closed_reason is None:
            self._last_sample_ns[topic] = now_ns()
            self._queue_initial_state(topic)


async def refuse(websocket: WebSocket, problem: Problem) -> None:
    """Refuse a handshake: an `error` message, then a 44xx close code that names the status."""
    await websocket.accept()
    message = {"type": "error", "code": problem.code, "status": problem.status}
    with contextlib.suppress(Exception):
        await websocket.send_text(encode({**message, "message": problem.detail}))
        await websocket.close(CLOSE_BY_STATUS.get(problem.status, CLOSE_POLICY), problem.code)


async def websocket_endpoint(websocket: WebSocket) -> None:
    app = websocket.app
    counters: StreamCounters | None = getattr(app.state, "stream_counters", None)
    guard = await ready_guard(app.state)
    if guard is None:  # accounts not open: fail closed
        await websocket.close(1013, "try again later")
        return
    ip = client_ip(websocket.client)
    try:
        principal = await authenticate_websocket(
            guard, websocket.headers, websocket.query_params.get("ticket"), ip
        )
    except Problem as problem:
        await refuse(websocket, problem)
        return
    tier = guard.tier_of(principal)
    runtime = app.state.runtime
    session = StreamSession(
        websocket,
        runtime.bus,
        runtime.read_model,
        app.state.settings,
        counters,
        principal,
        tier,
        runtime.status,
    )
    try:
        owner = await admit_websocket(guard, principal, ip, session)
    except Problem as problem:
        session.subscription.close("refused")
        await refuse(websocket, problem)
        return
    try:
        await session.serve()
    finally:
        await release_websocket(guard, owner, session)
