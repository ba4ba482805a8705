import type { BookHistory, Level } from './types';

/** Colormap shared by the shader and the tests: t in [0, 1] -> RGB bytes. */
export function colormap(t: number): [number, number, number] {
  const c = Math.min(1, Math.max(0, t));
  const r = Math.min(1, Math.max(0, 2 * c - 0.6));
  const g = Math.min(1, Math.max(0, 2 * c - 1.0)) * 0.9 + c * 0.1;
  const b = Math.min(1, Math.max(0, 0.1 + 1.5 * c - Math.max(0, 3 * c - 2)));
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

export const COLORMAP_GLSL = `
vec3 colormap(float t) {
  float c = clamp(t, 0.0, 1.0);
  float r = clamp(2.0 * c - 0.6, 0.0, 1.0);
  float g = clamp(2.0 * c - 1.0, 0.0, 1.0) * 0.9 + c * 0.1;
  float b = clamp(0.1 + 1.5 * c - max(0.0, 3.0 * c - 2.0), 0.0, 1.0);
  return vec3(r, g, b);
}`;

/** A time x price grid of resting size. Columns are written into a ring (`head` = newest). */
export class HeatmapGrid {
  readonly data: Float32Array;
  head = -1;
  lo = 0; // price at the bottom edge of row 0
  bucket = 0; // price per row
  max = 0;

  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {
    this.data = new Float32Array(cols * rows);
  }

  /** Row of a price, or -1 outside the grid. */
  rowOf(price: number): number {
    const r = Math.floor((price - this.lo) / this.bucket + 1e-9);
    return r >= 0 && r < this.rows ? r : -1;
  }

  /** Choose a price window around the mid; returns true when it re-centred (history cleared). */
  centre(bids: Level[], asks: Level[], tick: number): boolean {
    if (!bids.length || !asks.length) return false;
    const mid = (bids[0][0] + asks[0][0]) / 2;
    const depth = Math.min(bids.length, asks.length, 100) - 1;
    const span = Math.max(asks[depth][0] - bids[depth][0], tick * this.rows);
    const bucket = Math.max(tick, Math.ceil(span / this.rows / tick) * tick);
    const inside = this.bucket > 0 && mid > this.lo + this.bucket * this.rows * 0.2 && mid < this.lo + this.bucket * this.rows * 0.8;
    // keep the window unless the mid left its middle or the book's spread of levels changed a lot
    if (inside && bucket <= this.bucket * 3 && bucket * 3 >= this.bucket) return false;
    this.bucket = bucket;
    this.lo = Math.floor((mid - (this.bucket * this.rows) / 2) / this.bucket) * this.bucket;
    this.data.fill(0);
    this.head = -1;
    this.max = 0;
    return true;
  }

  /** Bucket the book into the next column; returns that column (length rows). */
  push(bids: Level[], asks: Level[]): Float32Array {
    this.head = (this.head + 1) % this.cols;
    const col = this.data.subarray(this.head * this.rows, (this.head + 1) * this.rows);
    col.fill(0);
    for (const side of [bids, asks])
      for (const [p, s] of side) {
        const r = this.rowOf(p);
        if (r >= 0) col[r] += s;
      }
    let m = 0;
    for (let i = 0; i < this.rows; i++) if (col[i] > m) m = col[i];
    // the colour scale follows the recent maximum, decaying slowly
    this.max = Math.max(m, this.max * 0.995);
    return col;
  }

  /** Screen column (0 = oldest, cols-1 = newest) to ring column. */
  ringCol(screenCol: number): number {
    return (((this.head + 1 + screenCol) % this.cols) + this.cols) % this.cols;
  }
}

/** The recorded past into the grid, oldest first, before the live columns: each recorded book
 * fills the columns of its step (`stepMs / columnMs`). Returns the columns filled. */
export function fillPast(grid: HeatmapGrid, history: BookHistory, columnMs: number): number {
  const repeat = Math.max(1, Math.round(history.stepMs / columnMs));
  const room = grid.cols - 1; // the newest column is the live book's
  let skip = Math.max(0, history.columns.length * repeat - room); // the oldest go first
  let filled = 0;
  for (const { bids, asks } of history.columns)
    for (let i = 0; i < repeat; i++) {
      if (skip > 0) skip--;
      else {
        grid.push(bids, asks);
        filled++;
      }
    }
  return filled;
}
