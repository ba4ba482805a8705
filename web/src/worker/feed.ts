// The feed engine: WebSocket parsing, books, candles, tape and tickers, off the UI thread.
// Pure enough to be driven by tests (inject `post`, `now`, a socket factory and fetch).
import { OrderBook, mergeLevels } from '../lib/book';
import { CandleBuilder } from '../lib/candles';
import { closeProblem, retryDelay } from '../lib/access';
import { mergeBars, parseCandles, parseLevels } from '../lib/history';
import {
  ANALYTICS_PRIMARY,
  INTERVALS,
  type Bar,
  type BookHistory,
  type ConnProblem,
  type ConnState,
  type Frame,
  type Identity,
  type TapeTrade,
  type TickerState,
  type ToWorker,
} from '../lib/types';
import { Outbox } from './outbox';
import { numericValues, type FeedDeps, type HttpResponse, type Msg, type SocketLike } from './ports';
import { Entitlements, type SubRequest } from './subs';

const BOOK_DEPTH = 400;
const PAST_MS = 23 * 3600_000; // recorded candles asked for: within the smallest tier's day
const HEAT_PAST_MS = 60_000; // recorded books for the heatmap: its whole width
const HEAT_STEP_MS = 1000;
const iso = (ms: number) => new Date(ms).toISOString();
const ANALYTICS = ['ofi', 'vpin', 'greeks'];

export class FeedEngine {
  private ws: SocketLike | null = null;
  private wsUrl = '';
  private httpBase = '';
  private symbols: string[] = [];
  private channels: string[] = [];
  private venues: string[] = [];
  private state: ConnState = 'connecting';
  private attempt = 0;
  private lastMessageAt = 0;
  private msgCount = 0;
  private rateWindowStart = 0;
  private rate = 0;
  private symbol = '';
  private venue: string | null = null;
  private interval = 60;
  private books = new Map<string, OrderBook>();
  private bookDirty = false;
  private tickers = new Map<string, TickerState>();
  private tickersDirty = new Set<string>();
  private tape: TapeTrade[] = [];
  private candles: CandleBuilder = new CandleBuilder(60);
  private candleKey = '';
  private historyLoading = false;
  private pendingTrades: [string, number, number, number][] = [];
  private analytics: Frame['analytics'] = {};
  private bookHistory: BookHistory | null = null;
  private generation = 0;
  private analyticsGeneration = 0;
  private connGeneration = 0;
  private identity: Identity = null;
  private problem: ConnProblem | null = null;
  private refusal: Msg | null = null;
  private entitlements = new Entitlements();
  private requests = new Map<number, SubRequest>();
  private nextId = 1;
  private outbox: Outbox;
  hidden = false;
  flushMs = 50;
  /** Whether a session may exist: without one no ticket is asked for (it would be a 401). */
  private signedIn = true;

  constructor(private deps: FeedDeps) {
    this.outbox = new Outbox((text) => this.ws?.send(text), deps.now, deps.setTimeout);
  }

  handle(msg: ToWorker): void {
    if (msg.type === 'start') {
      this.wsUrl = msg.wsUrl;
      this.httpBase = msg.httpBase;
      this.symbols = msg.symbols;
      if (msg.flushMs) this.flushMs = msg.flushMs;
      this.signedIn = msg.signedIn ?? true;
      this.open();
    } else if (msg.type === 'select') {
      this.select(msg.symbol, msg.venue, msg.interval);
    } else if (msg.type === 'visibility') {
      this.hidden = msg.hidden;
    } else if (msg.type === 'reconnect') {
      if (msg.signedIn !== undefined) this.signedIn = msg.signedIn;
      this.reconnect();
    }
  }

  /** The identity changed (signed in or out): drop the socket and connect again at once. */
  reconnect(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close();
    }
    this.dropConnection();
    this.attempt = 0;
    this.problem = null;
    this.entitlements.clear();
    if (this.wsUrl) this.open();
  }

  private dropConnection(): void {
    this.state = 'closed';
    this.outbox.clear();
    this.requests.clear();
    this.books.clear();
    this.bookDirty = true;
  }

  /** Get a fresh ticket (single use, 30 s) when signed in, then connect; none when anonymous. */
  private open(): void {
    const gen = ++this.connGeneration;
    this.state = 'connecting';
    if (!this.deps.ticket || !this.signedIn) {
      this.connect(gen, null);
      return;
    }
    void this.fetchTicket().then((result) => {
      if (gen !== this.connGeneration) return; // a reconnect overtook this attempt
      if ('problem' in result) {
        this.problem = result.problem;
        this.state = 'closed';
        const wait = result.problem.status === 429 ? 5_000 : 0;
        this.later(gen, Math.max(wait, retryDelay(0, this.attempt++)));
      } else this.connect(gen, result.ticket);
    });
  }

  private async fetchTicket(): Promise<{ ticket: string | null } | { problem: ConnProblem }> {
    try {
      const r = await this.deps.ticket!(`${this.httpBase}/api/v1/ws-ticket`);
      if (r.ok) {
        const body = (await r.json()) as { ticket?: unknown };
        if (typeof body.ticket === 'string' && body.ticket) return { ticket: body.ticket };
        return { ticket: null };
      }
      if (r.status === 401 || r.status === 404) return { ticket: null }; // not signed in: anonymous
      const body = (await r.json().catch(() => ({}))) as { code?: string; detail?: string };
      return { problem: { code: body.code ?? 'unavailable', message: body.detail ?? `ticket: HTTP ${r.status}`, status: r.status } };
    } catch {
      return { problem: { code: 'unreachable', message: 'the server cannot be reached' } };
    }
  }

  private later(gen: number, ms: number): void {
    this.deps.setTimeout(() => {
      if (gen === this.connGeneration) this.open();
    }, ms);
  }

  private connect(gen: number, ticket: string | null): void {
    const identity: Identity = ticket ? 'user' : this.deps.ticket ? 'anonymous' : null;
    if (identity !== this.identity) this.entitlements.clear();
    this.identity = identity;
    this.refusal = null;
    const url = ticket ? `${this.wsUrl}${this.wsUrl.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}` : this.wsUrl;
    const ws = this.deps.connect(url);
    this.ws = ws;
    ws.onopen = () => {
      // a refused handshake is accepted too (then gets an error and a 44xx close): the stream
      // counts as open, and the backoff starts over, only once the server says `info`
      this.rateWindowStart = this.deps.now();
      this.msgCount = 0;
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') this.onText(ev.data);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.dropConnection();
      const code = ev?.code ?? 1006;
      this.problem = closeProblem(code, this.refusal);
      this.later(gen, retryDelay(code, this.attempt++, ticket !== null));
    };
  }

  private send(req: SubRequest): void {
    if (!this.ws || this.state !== 'open') return;
    const allowed = this.entitlements.filter(req);
    if (!allowed) return;
    const id = this.nextId++;
    this.requests.set(id, allowed);
    this.outbox.push(JSON.stringify({ ...allowed, id }));
  }

  private onError(m: Msg): void {
    if (this.state !== 'open') {
      this.refusal = m; // the handshake was refused: a 44xx close follows
      return;
    }
    const req = m.id !== undefined ? this.requests.get(m.id) : undefined;
    if (m.id !== undefined) this.requests.delete(m.id);
    if (!req || m.code !== 'tier_required' || req.op !== 'subscribe') return;
    for (const next of this.entitlements.refused(req, m.message ?? '')) this.send(next);
  }

  private restDenied(r: HttpResponse, channel: string, symbol: string): Promise<void> {
    if (r.status !== 403) return Promise.resolve();
    return r
      .json()
      .then((body) => {
        const p = body as { code?: string; detail?: string };
        if (p.code === 'tier-required')
          this.entitlements.refused({ op: 'subscribe', channels: [channel], symbols: [symbol] }, p.detail ?? 'not included in your tier');
      })
      .catch(() => {});
  }

  private subscribeAll(): void {
    const live = this.symbols.length ? this.symbols : [];
    const chans = ['ticker', 'trades'].filter((c) => this.channels.includes(c));
    if (live.length && chans.length) this.send({ op: 'subscribe', channels: chans, symbols: live });
    this.subscribeSelected('subscribe');
    if (this.symbol) {
      const gen = ++this.analyticsGeneration;
      void this.loadAnalyticsHistory(gen);
      void this.loadBookHistory(gen);
    }
  }

  private selectedChannels(): string[] {
    return ['book', ...ANALYTICS].filter((c) => this.channels.includes(c));
  }

  private subscribeSelected(op: 'subscribe' | 'unsubscribe'): void {
    if (!this.symbol) return;
    const chans = this.selectedChannels();
    if (!chans.length) return;
    const req: SubRequest = { op, channels: chans, symbols: [this.symbol] };
    if (this.venue) req.venues = [this.venue];
    this.send(req);
  }

  select(symbol: string, venue: string | null, interval: number): void {
    const symbolChanged = symbol !== this.symbol || venue !== this.venue;
    if (symbolChanged) {
      this.subscribeSelected('unsubscribe');
      this.symbol = symbol;
      this.venue = venue;
      this.books.clear();
      this.bookDirty = true;
      this.tape = [];
      this.analytics = {};
      this.subscribeSelected('subscribe');
      const gen = ++this.analyticsGeneration;
      void this.loadAnalyticsHistory(gen);
      void this.loadBookHistory(gen);
    }
    if (symbolChanged || interval !== this.interval || !this.candleKey) {
      this.interval = interval;
      void this.loadHistory();
    }
  }

  private matches(m: Msg): boolean {
    return m.symbol === this.symbol && (this.venue === null || m.venue === this.venue);
  }

  onText(text: string): void {
    const now = this.deps.now();
    this.lastMessageAt = now;
    this.msgCount++;
    if (now - this.rateWindowStart >= 1000) {
      this.rate = (this.msgCount * 1000) / Math.max(1, now - this.rateWindowStart);
      this.msgCount = 0;
      this.rateWindowStart = now;
    }
    let m: Msg;
    try {
      m = JSON.parse(text) as Msg;
    } catch {
      return;
    }
    switch (m.type) {
      case 'info':
        this.state = 'open';
        this.attempt = 0;
        this.problem = null;
        this.channels = m.channels ?? [];
        this.venues = m.venues ?? [];
        if (!this.symbols.length) this.symbols = (m as { symbols?: string[] }).symbols ?? [];
        this.subscribeAll();
        return;
      case 'snapshot':
      case 'delta':
        if (m.channel === 'book' && this.matches(m)) this.onBook(m);
        return;
      case 'trade':
        this.onTrade(m);
        return;
      case 'ticker':
        this.onTicker(m);
        return;
      case 'gap':
        return; // a book stream is followed by a fresh snapshot
      case 'error':
        this.onError(m);
        return;
      case 'subscribed':
      case 'unsubscribed':
        if (m.id !== undefined) this.requests.delete(m.id);
        return;
      default:
        if (m.channel && ANALYTICS.includes(m.channel) && this.matches(m) && m.data) this.onAnalytics(m);
    }
  }

  private onBook(m: Msg): void {
    const key = `${m.venue}|${m.symbol}`;
    let book = this.books.get(key);
    const data = m.data as { bids: [string, string][]; asks: [string, string][] };
    if (m.type === 'snapshot') {
      if (!book) this.books.set(key, (book = new OrderBook()));
      book.snapshot(data.bids, data.asks, m.seq ?? 0);
    } else {
      if (!book) return; // deltas before a snapshot are meaningless
      book.apply(data.bids, data.asks, m.seq ?? 0);
    }
    this.bookDirty = true;
  }

  private onTrade(m: Msg): void {
    const d = m.data as { id: string; price: string; amount: string; side: 'buy' | 'sell'; timestamp: number };
    const price = Number(d.price);
    const amount = Number(d.amount);
    const ts = d.timestamp ?? m.timestamp ?? this.deps.now();
    const sym = m.symbol ?? '';
    const t = this.tickers.get(sym) ?? { symbol: sym, last: null, bid: null, ask: null, ts: 0 };
    t.last = price;
    t.ts = ts;
    this.tickers.set(sym, t);
    this.tickersDirty.add(sym);
    if (!this.matches(m)) return;
    const prev = this.tape[this.tape.length - 1];
    if (prev && prev.ts === ts && prev.side === d.side && prev.price === price && prev.venue === m.venue) {
      prev.amount += amount;
      prev.count += 1;
    } else {
      this.tape.push({ id: d.id, venue: m.venue ?? '', price, amount, side: d.side, ts, count: 1 });
      if (this.tape.length > 500) this.tape.splice(0, this.tape.length - 500);
    }
    if (this.historyLoading) this.pendingTrades.push([d.id, ts, price, amount]);
    else this.candles.addTrade(ts, price, amount);
  }

  private onTicker(m: Msg): void {
    const d = m.data as { bid: string; ask: string; last: string | null };
    const sym = m.symbol ?? '';
    const t = this.tickers.get(sym) ?? { symbol: sym, last: null, bid: null, ask: null, ts: 0 };
    t.bid = Number(d.bid);
    t.ask = Number(d.ask);
    if (d.last !== null && d.last !== undefined) t.last = Number(d.last);
    t.ts = m.timestamp ?? t.ts;
    this.tickers.set(sym, t);
    this.tickersDirty.add(sym);
  }

  private onAnalytics(m: Msg): void {
    this.addAnalytics(m.channel as string, m.data ?? {}, m.timestamp ?? this.deps.now());
  }

  private addAnalytics(channel: string, data: Record<string, unknown>, ts: number): void {
    const values = numericValues(data);
    const prev = this.analytics[channel];
    const history = prev ? prev.history : [];
    const primary = values[ANALYTICS_PRIMARY[channel] ?? ''];
    if (primary !== undefined) {
      history.push(primary);
      if (history.length > 240) history.splice(0, history.length - 240);
    }
    this.analytics[channel] = { ts, values, history };
  }

  /** Seed the analytics sparklines from REST when the server keeps recent buckets. */
  private async loadAnalyticsHistory(gen: number): Promise<void> {
    const venue = this.venue ?? this.venues[0] ?? 'sim';
    const path = this.symbol.replace('/', '-');
    for (const channel of ['ofi', 'vpin'].filter((c) => this.channels.includes(c))) {
      try {
        if (this.entitlements.isDenied(channel, this.symbol)) continue;
        const r = await this.deps.fetch(`${this.httpBase}/api/v1/analytics/${channel}/${venue}/${path}?limit=240`);
        if (!r.ok) {
          await this.restDenied(r, channel, this.symbol);
          continue;
        }
        const body = (await r.json()) as { data?: Record<string, unknown>[] };
        if (gen !== this.analyticsGeneration || this.analytics[channel]) continue; // live data came first
        for (const row of body.data ?? []) this.addAnalytics(channel, row, Number(row.start ?? 0));
      } catch {
        /* not available */
      }
    }
  }

  /** The heatmap's past: the recorded book of each second of the last minute, when the server
   * keeps history (a fresh simulator has hours of it: store/warmstart.py). */
  private async loadBookHistory(gen: number): Promise<void> {
    const venues = this.venue ? [this.venue] : this.venues;
    if (venues.length !== 1 || !this.symbol || !this.channels.includes('book')) return;
    if (this.entitlements.isDenied('history', this.symbol)) return;
    const end = this.deps.now();
    const path = this.symbol.replace('/', '-');
    const query = `start=${iso(end - HEAT_PAST_MS)}&end=${iso(end)}&step_ms=${HEAT_STEP_MS}&depth=100`;
    try {
      const r = await this.deps.fetch(`${this.httpBase}/api/v1/history/books/${venues[0]}/${path}?${query}`);
      if (!r.ok) return this.restDenied(r, 'history', this.symbol);
      const body = (await r.json()) as { data?: { timestamp: number; bids: unknown; asks: unknown }[] };
      if (gen !== this.analyticsGeneration || !body.data?.length) return;
      const columns = body.data.map((d) => ({ ts: d.timestamp, bids: parseLevels(d.bids), asks: parseLevels(d.asks) }));
      this.bookHistory = { key: `${this.symbol}|${this.venue ?? '*'}`, stepMs: HEAT_STEP_MS, columns };
    } catch {
      /* no history: the heatmap starts empty */
    }
  }

  /** Recorded candles before what the live analytics hold (they keep the last 1000 closed). */
  private async pastCandles(venue: string, path: string, label: string, interval: number): Promise<Bar[]> {
    if (this.entitlements.isDenied('history', this.symbol)) return [];
    const end = this.deps.now();
    const start = end - Math.min(1000 * interval * 1000, PAST_MS);
    const query = `interval=${label}&start=${iso(start)}&end=${iso(end + interval * 1000)}&limit=1000`;
    try {
      const r = await this.deps.fetch(`${this.httpBase}/api/v1/history/candles/${venue}/${path}?${query}`);
      if (!r.ok) {
        await this.restDenied(r, 'history', this.symbol);
        return [];
      }
      return parseCandles(await r.json());
    } catch {
      return [];
    }
  }

  private async loadHistory(): Promise<void> {
    const gen = ++this.generation;
    const interval = this.interval;
    this.candles = new CandleBuilder(interval);
    this.candleKey = `${this.symbol}|${this.venue ?? '*'}|${interval}`;
    this.historyLoading = true;
    this.pendingTrades = [];
    const label = (INTERVALS.find((i) => i.seconds === interval)?.label ?? '1m').toLowerCase();
    const path = this.symbol.replace('/', '-');
    const venues = this.venue ? [this.venue] : this.venues.length ? this.venues : ['sim'];
    let bars = null as ReturnType<typeof parseCandles> | null;
    try {
      if (venues.length === 1 && !this.entitlements.isDenied('candles', this.symbol)) {
        const [r, past] = await Promise.all([
          this.deps.fetch(`${this.httpBase}/api/v1/analytics/candles/${venues[0]}/${path}?interval=${label}&limit=1000`),
          this.pastCandles(venues[0], path, label, interval),
        ]);
        if (r.ok) bars = parseCandles(await r.json());
        else await this.restDenied(r, 'candles', this.symbol);
        if (past.length) bars = mergeBars(past, bars ?? []);
      }
    } catch {
      bars = null;
    }
    if (gen !== this.generation) return;
    const builder = this.candles;
    const seen = new Set<string>();
    if (bars && bars.length) {
      builder.load(bars);
    } else {
      // no candle history endpoint yet: rebuild what we can from recent trades
      for (const venue of venues) {
        try {
          if (this.entitlements.isDenied('trades', this.symbol)) continue;
          const r = await this.deps.fetch(`${this.httpBase}/api/v1/trades/${venue}/${path}?limit=1000`);
          if (!r.ok) {
            await this.restDenied(r, 'trades', this.symbol);
            continue;
          }
          const body = (await r.json()) as { data: { id: string; price: string; amount: string; timestamp: number }[] };
          if (gen !== this.generation) return;
          for (const t of body.data) {
            seen.add(t.id);
            builder.addTrade(t.timestamp, Number(t.price), Number(t.amount));
          }
        } catch {
          /* offline: live trades only */
        }
      }
    }
    if (gen !== this.generation) return;
    const lastTime = builder.all().length ? builder.all()[builder.all().length - 1].time : -Infinity;
    for (const [id, ts, p, a] of this.pendingTrades) {
      if (seen.has(id)) continue; // already in the REST trades
      if (bars && bars.length && builder.bucket(ts) < lastTime) continue; // inside loaded candles
      builder.addTrade(ts, p, a);
    }
    this.pendingTrades = [];
    this.historyLoading = false;
  }

  private takeBookHistory(): BookHistory | null {
    const history = this.bookHistory;
    this.bookHistory = null;
    return history;
  }

  /** Build one frame of everything that changed; null when nothing did. */
  flush(): Frame | null {
    const tickers: TickerState[] = [];
    for (const s of this.tickersDirty) {
      const t = this.tickers.get(s);
      if (t) tickers.push({ ...t });
    }
    this.tickersDirty.clear();
    let book: Frame['book'] = null;
    if (this.bookDirty) {
      this.bookDirty = false;
      const tops = [...this.books.values()].map((b) => b.top(BOOK_DEPTH));
      book = {
        key: `${this.symbol}|${this.venue ?? '*'}`,
        bids: tops.length === 1 ? tops[0].bids : mergeLevels(tops.map((t) => t.bids), -1, BOOK_DEPTH),
        asks: tops.length === 1 ? tops[0].asks : mergeLevels(tops.map((t) => t.asks), 1, BOOK_DEPTH),
        ts: this.lastMessageAt,
      };
    }
    const trades = this.tape.slice(-200);
    this.tape = [];
    const drained = this.historyLoading ? null : this.candles.drain();
    const candles = drained ? { key: this.candleKey, ...drained } : null;
    return {
      type: 'frame',
      conn: {
        state: this.state,
        lastMessageAt: this.lastMessageAt,
        messagesPerSecond: this.rate,
        channels: this.channels,
        identity: this.identity,
        problem: this.problem,
      },
      denied: this.entitlements.list(),
      tickers,
      book,
      trades,
      candles,
      analytics: this.analytics,
      bookHistory: this.takeBookHistory(),
    };
  }
}
