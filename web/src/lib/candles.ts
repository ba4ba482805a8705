import type { Bar } from './types';

/** Aggregates trades into OHLCV bars of `intervalS` seconds (UTC-aligned bucket starts). */
export class CandleBuilder {
  private bars: Bar[] = [];
  private changedFrom = Infinity; // index of the oldest bar changed since the last drain
  private resetPending = true;

  constructor(readonly intervalS: number) {}

  bucket(tsMs: number): number {
    return Math.floor(tsMs / 1000 / this.intervalS) * this.intervalS;
  }

  /** Replace everything with history (bars sorted by time). */
  load(history: Bar[]): void {
    this.bars = history.map((b) => ({ ...b }));
    this.resetPending = true;
    this.changedFrom = Infinity;
  }

  addTrade(tsMs: number, price: number, amount: number): void {
    const time = this.bucket(tsMs);
    const bars = this.bars;
    const last = bars[bars.length - 1];
    if (!last || time > last.time) {
      bars.push({ time, open: price, high: price, low: price, close: price, volume: amount });
      this.mark(bars.length - 1);
      return;
    }
    // same or older bucket: find it from the end (out-of-order trades are rare and recent)
    let i = bars.length - 1;
    while (i >= 0 && bars[i].time > time) i--;
    if (i >= 0 && bars[i].time === time) {
      const bar = bars[i];
      bar.high = Math.max(bar.high, price);
      bar.low = Math.min(bar.low, price);
      if (i === bars.length - 1) bar.close = price; // a late trade does not move an old close
      bar.volume += amount;
    } else {
      bars.splice(i + 1, 0, { time, open: price, high: price, low: price, close: price, volume: amount });
    }
    this.mark(i < 0 ? 0 : i);
  }

  private mark(i: number): void {
    if (i < this.changedFrom) this.changedFrom = i;
  }

  /** Bars changed since the last drain; `reset` means the consumer must replace all its bars. */
  drain(maxBars = 5000): { reset: boolean; bars: Bar[] } | null {
    if (this.bars.length > maxBars) {
      this.bars = this.bars.slice(-maxBars);
      this.resetPending = true;
    }
    if (this.resetPending) {
      this.resetPending = false;
      this.changedFrom = Infinity;
      return { reset: true, bars: this.bars.map((b) => ({ ...b })) };
    }
    if (this.changedFrom === Infinity) return null;
    const from = this.changedFrom;
    this.changedFrom = Infinity;
    // an edit older than the newest two bars is cheaper to ship as a reset
    if (from < this.bars.length - 2) return { reset: true, bars: this.bars.map((b) => ({ ...b })) };
    return { reset: false, bars: this.bars.slice(from).map((b) => ({ ...b })) };
  }

  all(): Bar[] {
    return this.bars;
  }
}
