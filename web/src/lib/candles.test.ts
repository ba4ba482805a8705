import { describe, expect, it } from 'vitest';
import { CandleBuilder } from './candles';
import { mergeBars, parseCandles, parseLevels } from './history';
import { backoffDelay } from './backoff';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0); // exactly on a minute boundary

describe('CandleBuilder', () => {
  it('builds OHLCV and cuts bars exactly at :00', () => {
    const c = new CandleBuilder(60);
    c.addTrade(T0 - 1, 10, 1); // 11:59:59.999 -> previous bar
    c.addTrade(T0, 11, 2); // 12:00:00.000 -> new bar
    c.addTrade(T0 + 30_000, 13, 1);
    c.addTrade(T0 + 59_999, 9, 1);
    const { reset, bars } = c.drain()!;
    expect(reset).toBe(true);
    expect(bars).toEqual([
      { time: T0 / 1000 - 60, open: 10, high: 10, low: 10, close: 10, volume: 1 },
      { time: T0 / 1000, open: 11, high: 13, low: 9, close: 9, volume: 4 },
    ]);
  });

  it('ships only the changed bars after the first drain', () => {
    const c = new CandleBuilder(1);
    c.addTrade(T0, 1, 1);
    c.drain();
    expect(c.drain()).toBeNull();
    c.addTrade(T0 + 500, 2, 1);
    c.addTrade(T0 + 1500, 3, 1);
    expect(c.drain()).toEqual({
      reset: false,
      bars: [
        { time: T0 / 1000, open: 1, high: 2, low: 1, close: 2, volume: 2 },
        { time: T0 / 1000 + 1, open: 3, high: 3, low: 3, close: 3, volume: 1 },
      ],
    });
  });

  it('puts an out-of-order trade into its own bucket without moving the later close', () => {
    const c = new CandleBuilder(60);
    c.addTrade(T0 + 10_000, 100, 1);
    c.addTrade(T0 + 70_000, 105, 1);
    c.drain();
    c.addTrade(T0 + 20_000, 120, 1); // late trade for the first bar
    c.addTrade(T0 - 30_000, 90, 1); // older than everything: inserted in front
    const out = c.drain()!;
    expect(out.reset).toBe(true);
    expect(out.bars.map((b) => [b.time - T0 / 1000, b.open, b.high, b.close, b.volume])).toEqual([
      [-60, 90, 90, 90, 1],
      [0, 100, 120, 100, 2],
      [60, 105, 105, 105, 1],
    ]);
  });

  it('aligns daily and 4h buckets to UTC', () => {
    const d = new CandleBuilder(86_400);
    expect(d.bucket(T0)).toBe(Date.UTC(2026, 0, 1) / 1000);
    expect(new CandleBuilder(14_400).bucket(T0 + 3_600_000)).toBe(T0 / 1000);
  });

  it('loads history, then keeps updating the last bar', () => {
    const c = new CandleBuilder(60);
    c.load([{ time: T0 / 1000, open: 1, high: 2, low: 1, close: 2, volume: 5 }]);
    expect(c.drain()!.reset).toBe(true);
    c.addTrade(T0 + 5000, 3, 1);
    expect(c.drain()).toEqual({ reset: false, bars: [{ time: T0 / 1000, open: 1, high: 3, low: 1, close: 3, volume: 6 }] });
  });
});

describe('history and reconnect helpers', () => {
  it('parses ccxt rows and objects in ms, s or ns', () => {
    expect(parseCandles({ data: [[T0, '1', '2', '0.5', '1.5', '10']] })).toEqual([
      { time: T0 / 1000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 },
    ]);
    expect(parseCandles([{ timestamp: T0 * 1e6, open: 1, high: 1, low: 1, close: 1 }])[0].time).toBe(T0 / 1000);
    expect(parseCandles({ candles: [{ time: T0 / 1000, open: 1, high: 1, low: 1, close: 1, volume: 2 }] })[0].volume).toBe(2);
    expect(parseCandles({ detail: 'nope' })).toEqual([]);
  });
  it('completes recorded bars with live ones (a live bar replaces the recorded one of its time)', () => {
    const bar = (time: number, close: number) => ({ time, open: 1, high: 9, low: 1, close, volume: 1 });
    expect(mergeBars([bar(60, 1), bar(120, 2)], [bar(120, 5), bar(180, 6)])).toEqual([bar(60, 1), bar(120, 5), bar(180, 6)]);
    expect(mergeBars([], [bar(60, 1)])).toEqual([bar(60, 1)]);
    expect(parseLevels([['1.5', '2'], ['x', '1'], 'junk', ['3', '0.5']])).toEqual([[1.5, 2], [3, 0.5]]);
    expect(parseLevels(null)).toEqual([]);
  });
  it('backs off exponentially with a cap', () => {
    expect(backoffDelay(0, () => 0.5)).toBe(250);
    expect(backoffDelay(3, () => 0.5)).toBe(2000);
    expect(backoffDelay(20, () => 0.5)).toBe(10_000);
    expect(backoffDelay(0, () => 0)).toBe(200);
  });
});

describe('ema', async () => {
  const { ema } = await import('./indicators');
  it('seeds with the SMA, then smooths with k = 2/(n+1)', () => {
    expect(ema([1, 2, 3, 4], 3)).toEqual([null, null, 2, 3]);
    expect(ema([2, 2], 5)).toEqual([null, null]);
  });
});
