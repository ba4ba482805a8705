import { describe, expect, it } from 'vitest';
import { FeedEngine } from './feed';
import { numericValues } from './ports';
import { FakeSocket } from './fakes';
import type { Frame } from '../lib/types';

function setup(fetchBody: Record<string, unknown> = {}, asked: string[] = []) {
  const sockets: FakeSocket[] = [];
  const timers: [() => void, number][] = [];
  let now = 1_700_000_000_000;
  const engine = new FeedEngine({
    post: () => {},
    connect: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    fetch: async (url: string) => {
      asked.push(url);
      const key = Object.keys(fetchBody).find((k) => url.includes(k));
      return { ok: !!key, json: async () => (key ? fetchBody[key] : {}) };
    },
    now: () => now,
    setTimeout: (fn, ms) => timers.push([fn, ms]),
  });
  engine.handle({ type: 'start', wsUrl: 'ws://x/ws', httpBase: 'http://x', symbols: ['BTC/USD', 'ETH/USD'] });
  const ws = sockets[0];
  ws.onopen!();
  ws.push({ type: 'info', channels: ['book', 'ticker', 'trades'], venues: ['sim'], symbols: ['BTC/USD', 'ETH/USD'] });
  return { engine, sockets, ws, timers, tick: (ms: number) => (now += ms) };
}

const flushAsync = () => new Promise((r) => setTimeout(r, 0));
const trade = (symbol: string, id: string, price: string, ts: number, side = 'buy') => ({
  type: 'trade',
  channel: 'trades',
  venue: 'sim',
  symbol,
  seq: 1,
  timestamp: ts,
  data: { id, price, amount: '1', side, timestamp: ts },
});

describe('FeedEngine history', () => {
  it('shows the recorded past at once: history candles before the live ones, the last minute of books', async () => {
    const T = 1_700_000_000_000; // the fake clock: recorded bars end just before it
    const bar = (t: number, close: string) => ({ start: t, open: '1', high: '2', low: '1', close, volume: '1' });
    const past = Array.from({ length: 120 }, (_, i) => bar(T - (120 - i) * 60_000, 'p'));
    const asked: string[] = [];
    const { engine } = setup({
      '/api/v1/history/candles/sim/BTC-USD': { data: past.map((b, i) => ({ ...b, close: String(100 + i) })) },
      '/api/v1/analytics/candles/sim/BTC-USD': { data: [bar(T - 60_000, '999'), bar(T, '1000')] },
      '/api/v1/history/books/sim/BTC-USD': {
        data: [0, 1, 2].map((i) => ({ timestamp: T - 3000 + i * 1000, bids: [['99', '1']], asks: [['101', String(i + 1)]] })),
      },
    }, asked);
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: null, interval: 60 });
    for (let i = 0; i < 5; i++) await flushAsync();
    const frame = engine.flush()!;
    const bars = frame.candles!.bars;
    expect(bars).toHaveLength(121); // 120 recorded + the open live one
    expect(bars[0].close).toBe(100);
    expect(bars[bars.length - 2].close).toBe(999); // the live view of that minute wins
    expect(bars[bars.length - 1].close).toBe(1000);
    expect(frame.bookHistory).toEqual({
      key: 'BTC/USD|*',
      stepMs: 1000,
      columns: [0, 1, 2].map((i) => ({ ts: T - 3000 + i * 1000, bids: [[99, 1]], asks: [[101, i + 1]] })),
    });
    expect(engine.flush()!.bookHistory).toBeNull(); // handed over once
    const history = asked.find((u) => u.includes('/history/candles/'))!;
    expect(new URL(history).searchParams.get('interval')).toBe('1m');
    expect(Date.parse(new URL(history).searchParams.get('start')!)).toBe(T - 1000 * 60_000);
  });
});

describe('FeedEngine', () => {
  it('subscribes to tickers and trades for all symbols and the book for the selection', async () => {
    const { engine, ws } = setup();
    engine.handle({ type: 'select', symbol: 'ETH/USD', venue: null, interval: 60 });
    await flushAsync();
    expect(ws.sent).toEqual([
      { op: 'subscribe', channels: ['ticker', 'trades'], symbols: ['BTC/USD', 'ETH/USD'] },
      { op: 'subscribe', channels: ['book'], symbols: ['ETH/USD'] },
    ]);
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: 'sim', interval: 60 });
    expect(ws.sent.slice(2)).toEqual([
      { op: 'unsubscribe', channels: ['book'], symbols: ['ETH/USD'] },
      { op: 'subscribe', channels: ['book'], symbols: ['BTC/USD'], venues: ['sim'] },
    ]);
  });

  it('keeps the book from snapshot + deltas and ignores other symbols', async () => {
    const { engine, ws } = setup();
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: null, interval: 60 });
    await flushAsync();
    engine.flush();
    ws.push({ type: 'delta', channel: 'book', venue: 'sim', symbol: 'BTC/USD', seq: 4, data: { bids: [['1', '1']], asks: [] } });
    expect(engine.flush()!.book).toBeNull(); // a delta before any snapshot is dropped
    ws.push({ type: 'snapshot', channel: 'book', venue: 'sim', symbol: 'BTC/USD', seq: 5, data: { bids: [['100', '1']], asks: [['101', '2']] } });
    ws.push({ type: 'delta', channel: 'book', venue: 'sim', symbol: 'BTC/USD', seq: 6, data: { bids: [['100.5', '3']], asks: [['101', '0'], ['102', '1']] } });
    ws.push({ type: 'snapshot', channel: 'book', venue: 'sim', symbol: 'ETH/USD', seq: 1, data: { bids: [['5', '1']], asks: [['6', '1']] } });
    const f = engine.flush()!;
    expect(f.book).toMatchObject({ key: 'BTC/USD|*', bids: [[100.5, 3], [100, 1]], asks: [[102, 1]] });
  });

  it('feeds the tape (aggregating same-ms prints), tickers and candles from trades', async () => {
    const { engine, ws } = setup({ '/api/v1/trades/sim/BTC-USD': { data: [{ id: 'h1', price: '50', amount: '2', timestamp: 1_700_000_000_000 }] } });
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: null, interval: 60 });
    ws.push(trade('BTC/USD', 'h1', '50', 1_700_000_000_000)); // arrives during the history fetch: deduplicated
    await flushAsync();
    await flushAsync();
    ws.push(trade('BTC/USD', 'a', '51', 1_700_000_001_000));
    ws.push(trade('BTC/USD', 'b', '51', 1_700_000_001_000));
    ws.push(trade('ETH/USD', 'c', '3', 1_700_000_001_000));
    const f: Frame = engine.flush()!;
    expect(f.trades).toHaveLength(2); // h1 plus the aggregated a+b
    expect(f.trades[1]).toMatchObject({ price: 51, amount: 2, count: 2 });
    expect(f.tickers.map((t) => [t.symbol, t.last])).toEqual([
      ['BTC/USD', 51],
      ['ETH/USD', 3],
    ]);
    expect(f.candles!.reset).toBe(true);
    expect(f.candles!.bars).toEqual([{ time: 1_699_999_980, open: 50, high: 51, low: 50, close: 51, volume: 4 }]);
  });

  it('uses the candles endpoint when the server has one', async () => {
    const { engine } = setup({ '/api/v1/analytics/candles/sim/BTC-USD?interval=5m': { data: [[1_700_000_100_000, 1, 2, 0.5, 1.5, 7]] } });
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: null, interval: 300 });
    await flushAsync();
    await flushAsync();
    expect(engine.flush()!.candles).toEqual({
      key: 'BTC/USD|*|300',
      reset: true,
      bars: [{ time: 1_700_000_100, open: 1, high: 2, low: 0.5, close: 1.5, volume: 7 }],
    });
  });

  it('reconnects with backoff and resubscribes', async () => {
    const { engine, sockets, ws, timers } = setup();
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: null, interval: 60 });
    ws.close();
    expect(engine.flush()!.conn.state).toBe('closed');
    expect(timers).toHaveLength(1);
    expect(timers[0][1]).toBeGreaterThanOrEqual(200);
    timers[0][0]();
    const ws2 = sockets[1];
    ws2.onopen!();
    ws2.push({ type: 'info', channels: ['book', 'ticker', 'trades', 'ofi'], venues: ['sim'] });
    expect(ws2.sent).toContainEqual({ op: 'subscribe', channels: ['book', 'ofi'], symbols: ['BTC/USD'] });
    ws2.push({ type: 'ofi', channel: 'ofi', venue: 'sim', symbol: 'BTC/USD', timestamp: 5, data: { ofi: ['0.5', '0.25'], ofi_normalised: [1.5, 2], window: 10, note: 'x' } });
    ws2.push({ type: 'ofi', channel: 'ofi', venue: 'sim', symbol: 'ETH/USD', timestamp: 6, data: { ofi_normalised: [9] } });
    ws2.push({ type: 'ofi', channel: 'ofi', venue: 'sim', symbol: 'BTC/USD', timestamp: 7, data: { ofi_normalised: [-1] } });
    const a = engine.flush()!.analytics;
    expect(a.ofi.history).toEqual([1.5, -1]); // ETH's bucket is not ours
    expect(a.ofi.values).toEqual({ 'ofi_normalised.0': -1 });
  });

  it('flattens numeric fields and arrays of analytics messages', () => {
    expect(numericValues({ ofi: ['0.5', '0.25'], window: 10, vpin: null, note: 'x' })).toEqual({ 'ofi.0': 0.5, 'ofi.1': 0.25, window: 10 });
  });
});
