// Tick-rate state lives here, outside React. The worker posts frames; we merge them and draw at
// most once per animation frame by calling the registered drawers.
import type { Bar, BookHistory, Conn, Denial, Frame, Level, TapeTrade, TickerState } from './lib/types';

export interface Dirty {
  book: boolean;
  trades: TapeTrade[];
  candles: { reset: boolean; bars: Bar[] } | null;
  tickers: boolean;
  bookHistory: BookHistory | null; // the recorded past of the selected book (the heatmap's)
}

export const live = {
  conn: { state: 'connecting', lastMessageAt: 0, messagesPerSecond: 0, channels: [], identity: null, problem: null } as Conn,
  denied: [] as Denial[], // channel/symbol pairs the tier does not include (notices on the panels)
  tickers: new Map<string, TickerState>(),
  book: { key: '', bids: [] as Level[], asks: [] as Level[], ts: 0 },
  tape: [] as TapeTrade[],
  candleKey: '',
  analytics: {} as Frame['analytics'],
  frames: 0, // drawn animation frames (the benchmark and tests read this)
  framesPosted: 0,
  paused: false, // tests freeze the picture to sample pixels
  drawMs: null as number[] | null, // set to [] to record the cost of each drawn frame (benchmark)
};

type Drawer = (dirty: Dirty) => void;
const drawers = new Set<Drawer>();
let pending: Dirty = { book: false, trades: [], candles: null, tickers: false, bookHistory: null };
let scheduled = false;

export function onDraw(fn: Drawer): () => void {
  drawers.add(fn);
  return () => drawers.delete(fn);
}

export function mergeCandles(
  prev: { reset: boolean; bars: Bar[] } | null,
  next: { reset: boolean; bars: Bar[] },
): { reset: boolean; bars: Bar[] } {
  if (next.reset || !prev) return { reset: next.reset, bars: next.bars.slice() };
  const bars = prev.bars.slice();
  for (const bar of next.bars) {
    const i = bars.findIndex((b) => b.time === bar.time);
    if (i >= 0) bars[i] = bar;
    else bars.push(bar);
  }
  bars.sort((a, b) => a.time - b.time);
  return { reset: prev.reset, bars };
}

export function applyFrame(frame: Frame): void {
  if (live.paused) return;
  live.framesPosted++;
  live.conn = frame.conn;
  live.denied = frame.denied ?? [];
  for (const t of frame.tickers) live.tickers.set(t.symbol, t);
  if (frame.tickers.length) pending.tickers = true;
  if (frame.book) {
    live.book = frame.book;
    pending.book = true;
  }
  if (frame.bookHistory) pending.bookHistory = frame.bookHistory;
  if (frame.trades.length) {
    pending.trades.push(...frame.trades);
    live.tape.push(...frame.trades);
    if (live.tape.length > 300) live.tape.splice(0, live.tape.length - 300);
  }
  if (frame.candles) {
    if (frame.candles.key !== live.candleKey) {
      live.candleKey = frame.candles.key;
      pending.candles = null;
    }
    pending.candles = mergeCandles(pending.candles, frame.candles);
  }
  live.analytics = frame.analytics;
  schedule();
}

export function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(draw);
}

function draw(): void {
  scheduled = false;
  const dirty = pending;
  pending = { book: false, trades: [], candles: null, tickers: false, bookHistory: null };
  live.frames++;
  const t0 = live.drawMs ? performance.now() : 0;
  for (const fn of drawers) {
    try {
      fn(dirty);
    } catch (err) {
      console.error(err);
    }
  }
  if (live.drawMs) live.drawMs.push(performance.now() - t0);
}

/** Forget tape and book when the selection changes (the worker starts over). */
export function resetSelection(): void {
  live.tape = [];
  live.book = { key: '', bids: [], asks: [], ts: 0 };
  pending.trades = [];
  pending.book = true;
  schedule();
}

/** Ask the book drawers to redraw on the next frame (e.g. grouping changed). */
export function touchBook(): void {
  pending.book = true;
  schedule();
}
