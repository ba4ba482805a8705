import type { Level } from './types';

/** An L2 book keyed by the venue's decimal price text; sizes are absolute ("0" deletes). */
export class OrderBook {
  readonly bids = new Map<string, number>();
  readonly asks = new Map<string, number>();
  seq = -1;

  snapshot(bids: [string, string][], asks: [string, string][], seq: number): void {
    this.bids.clear();
    this.asks.clear();
    this.seq = seq;
    this.apply(bids, asks, seq);
  }

  /** Apply a delta; returns false when it is out of order (stale seq) and was ignored. */
  apply(bids: [string, string][], asks: [string, string][], seq: number): boolean {
    if (seq < this.seq) return false;
    this.seq = seq;
    for (const [p, s] of bids) set(this.bids, p, s);
    for (const [p, s] of asks) set(this.asks, p, s);
    return true;
  }

  top(n: number): { bids: Level[]; asks: Level[] } {
    return { bids: sorted(this.bids, -1, n), asks: sorted(this.asks, 1, n) };
  }
}

function set(side: Map<string, number>, price: string, size: string): void {
  const amount = Number(size);
  if (amount === 0) side.delete(price);
  else side.set(price, amount);
}

function sorted(side: Map<string, number>, dir: 1 | -1, n: number): Level[] {
  const levels: Level[] = [];
  for (const [p, s] of side) levels.push([Number(p), s]);
  levels.sort((a, b) => dir * (a[0] - b[0]));
  return levels.length > n ? levels.slice(0, n) : levels;
}

/** Sum several books' levels (consolidated view): same price -> summed size. */
export function mergeLevels(sides: Level[][], dir: 1 | -1, n: number): Level[] {
  const byPrice = new Map<number, number>();
  for (const side of sides) for (const [p, s] of side) byPrice.set(p, (byPrice.get(p) ?? 0) + s);
  const out: Level[] = [...byPrice.entries()];
  out.sort((a, b) => dir * (a[0] - b[0]));
  return out.slice(0, n);
}

/**
 * Group levels into price buckets of `increment`: bids round down, asks round up, so a grouped
 * bid never crosses a grouped ask. Works on integer multiples of the tick to avoid float drift.
 */
export function groupLevels(levels: Level[], increment: number, side: 'bid' | 'ask', tick: number): Level[] {
  if (increment <= tick) return levels;
  const step = Math.round(increment / tick);
  const out: Level[] = [];
  for (const [p, s] of levels) {
    const ticks = Math.round(p / tick);
    const bucket = side === 'bid' ? Math.floor(ticks / step) * step : Math.ceil(ticks / step) * step;
    const price = Number((bucket * tick).toFixed(decimals(tick)));
    const last = out[out.length - 1];
    if (last && last[0] === price) last[1] += s;
    else out.push([price, s]);
  }
  return out;
}

/** Running totals of size, best level first. */
export function cumulative(levels: Level[]): number[] {
  const out: number[] = [];
  let total = 0;
  for (const [, s] of levels) out.push((total += s));
  return out;
}

export function decimals(x: number): number {
  const text = String(x);
  if (text.includes('e-')) return Number(text.split('e-')[1]);
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}
