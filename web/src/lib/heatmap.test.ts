import { describe, expect, it } from 'vitest';
import { HeatmapGrid, colormap, fillPast } from './heatmap';

describe('HeatmapGrid', () => {
  it('fills its past from recorded books, each over the columns of its step, newest last', () => {
    const g = new HeatmapGrid(10, 4);
    g.centre([[10, 1]], [[11, 1]], 1);
    const columns = [1, 2, 3, 4].map((n) => ({ ts: n * 1000, bids: [[10, n]] as [number, number][], asks: [[11, 1]] as [number, number][] }));
    // 1 s books, 250 ms columns: 4 columns each; 9 columns of room (the newest is the live book's)
    expect(fillPast(g, { key: 'BTC/USD|*', stepMs: 1000, columns }, 250)).toBe(9);
    const bidRow = g.rowOf(10);
    const byScreen = Array.from({ length: 10 }, (_, s) => g.data[g.ringCol(s) * 4 + bidRow]);
    // oldest first: the last three books fill what there is room for (1 + 4 + 4 columns)
    expect(byScreen.slice(1)).toEqual([2, 3, 3, 3, 3, 4, 4, 4, 4]);
    expect(fillPast(new HeatmapGrid(10, 4), { key: '', stepMs: 1000, columns: [] }, 250)).toBe(0);
  });

  it('writes columns into a ring and maps screen columns oldest-first', () => {
    const g = new HeatmapGrid(3, 10);
    g.centre([[99.5, 1]], [[100.5, 1]], 0.5);
    expect(g.bucket).toBeGreaterThanOrEqual(0.5);
    for (let i = 0; i < 4; i++) g.push([[99.5, i + 1]], [[100.5, 1]]);
    expect(g.head).toBe(0); // wrapped: columns 1, 2 then 0
    expect([0, 1, 2].map((s) => g.ringCol(s))).toEqual([1, 2, 0]);
    const newest = g.data.subarray(0, 10);
    expect(newest[g.rowOf(99.5)]).toBe(4);
    expect(newest[g.rowOf(100.5)]).toBe(1);
  });

  it('sums levels per bucket, ignores prices outside, and re-centres when the mid drifts', () => {
    const g = new HeatmapGrid(2, 4);
    g.centre([[10, 1]], [[11, 1]], 1); // 4 rows of 1
    const col = g.push([[10, 2], [9, 1], [0, 100]], [[11, 3], [12, 1], [999, 5]]);
    expect(Array.from(col).reduce((a, b) => a + b)).toBe(6); // rows 8..11: the 12 and far prices fall outside
    expect(g.max).toBe(3);
    expect(g.centre([[10, 1]], [[11, 1]], 1)).toBe(false);
    expect(g.centre([[50, 1]], [[51, 1]], 1)).toBe(true);
    expect(g.rowOf(50.5)).toBeGreaterThanOrEqual(0);
    expect(g.data.every((v) => v === 0)).toBe(true);
  });

  it('colormap runs from dark to bright and is monotone in brightness', () => {
    expect(colormap(0)).toEqual([0, 0, 26]);
    expect(colormap(1)).toEqual([255, 255, 153]);
    let prev = -1;
    for (let t = 0; t <= 1; t += 0.05) {
      const sum = colormap(t).reduce((a, b) => a + b);
      expect(sum).toBeGreaterThanOrEqual(prev);
      prev = sum;
    }
  });
});

describe('HeatmapGrid re-bucketing', () => {
  it('widens the window when the book spreads out a lot', () => {
    const g = new HeatmapGrid(2, 10);
    g.centre([[100, 1]], [[101, 1]], 1);
    expect(g.bucket).toBe(1);
    const wide: [number, number][] = Array.from({ length: 100 }, (_, i) => [100 - i * 2, 1]);
    const wideAsks: [number, number][] = Array.from({ length: 100 }, (_, i) => [101 + i * 2, 1]);
    expect(g.centre(wide, wideAsks, 1)).toBe(true);
    expect(g.bucket).toBe(40);
    expect(g.centre(wide, wideAsks, 1)).toBe(false);
  });
});
