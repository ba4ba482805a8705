import type { Bar, Level } from './types';

/** Parse a candles response whatever its exact shape: ccxt OHLCV rows or objects. */
export function parseCandles(body: unknown): Bar[] {
  const rows: unknown[] = Array.isArray(body)
    ? body
    : body && typeof body === 'object'
      ? ((body as Record<string, unknown>).data as unknown[]) ??
        ((body as Record<string, unknown>).candles as unknown[]) ??
        []
      : [];
  if (!Array.isArray(rows)) return [];
  const bars: Bar[] = [];
  for (const row of rows) {
    if (Array.isArray(row) && row.length >= 5) {
      const [t, o, h, l, c, v] = row.map(Number);
      bars.push({ time: toSeconds(t), open: o, high: h, low: l, close: c, volume: v || 0 });
    } else if (row && typeof row === 'object') {
      const r = row as Record<string, unknown>;
      const t = Number(r.time ?? r.timestamp ?? r.start ?? r.open_time);
      const bar: Bar = {
        time: toSeconds(t),
        open: Number(r.open),
        high: Number(r.high),
        low: Number(r.low),
        close: Number(r.close),
        volume: Number(r.volume ?? 0),
      };
      if ([bar.time, bar.open, bar.high, bar.low, bar.close].every(Number.isFinite)) bars.push(bar);
    }
  }
  bars.sort((a, b) => a.time - b.time);
  return bars.filter((b, i) => i === 0 || b.time !== bars[i - 1].time);
}

/** ms (or ns) timestamps to seconds; values that already look like seconds pass through. */
function toSeconds(t: number): number {
  if (t > 1e17) return Math.floor(t / 1e9);
  if (t > 1e11) return Math.floor(t / 1000);
  return Math.floor(t);
}

/** Recorded bars (the history) completed by the live ones: a live bar replaces a recorded bar
 * of the same time (it is the newer view of that bucket). */
export function mergeBars(past: Bar[], recent: Bar[]): Bar[] {
  const byTime = new Map<number, Bar>();
  for (const bar of past) byTime.set(bar.time, bar);
  for (const bar of recent) byTime.set(bar.time, bar);
  return [...byTime.values()].sort((a, b) => a.time - b.time);
}

/** `[price, amount]` decimal strings to numbers. */
export function parseLevels(rows: unknown): Level[] {
  if (!Array.isArray(rows)) return [];
  const out: Level[] = [];
  for (const row of rows) {
    if (!Array.isArray(row)) continue;
    const price = Number(row[0]);
    const size = Number(row[1]);
    if (Number.isFinite(price) && Number.isFinite(size)) out.push([price, size]);
  }
  return out;
}
