import { describe, expect, it } from 'vitest';
import { OrderBook, cumulative, groupLevels, mergeLevels } from './book';

describe('OrderBook', () => {
  it('applies a snapshot then absolute-size deltas, "0" deletes', () => {
    const book = new OrderBook();
    book.snapshot([['100.00', '1.5'], ['99.50', '2']], [['100.50', '1'], ['101.00', '3']], 10);
    book.apply([['100.00', '0'], ['99.75', '4']], [['100.50', '0.25']], 11);
    const top = book.top(10);
    expect(top.bids).toEqual([[99.75, 4], [99.5, 2]]);
    expect(top.asks).toEqual([[100.5, 0.25], [101, 3]]);
  });

  it('ignores deltas older than the snapshot and limits depth', () => {
    const book = new OrderBook();
    book.snapshot([['1', '1'], ['2', '1'], ['3', '1']], [['4', '1']], 20);
    expect(book.apply([['3', '0']], [], 19)).toBe(false);
    expect(book.top(2).bids).toEqual([[3, 1], [2, 1]]);
  });

  it('a new snapshot replaces everything', () => {
    const book = new OrderBook();
    book.snapshot([['1', '1']], [['2', '1']], 1);
    book.snapshot([['5', '1']], [['6', '2']], 2);
    expect(book.top(5)).toEqual({ bids: [[5, 1]], asks: [[6, 2]] });
  });
});

describe('grouping', () => {
  const tick = 0.01;
  it('rounds bids down and asks up to the increment, summing sizes', () => {
    const bids: [number, number][] = [[100.07, 1], [100.03, 2], [99.99, 4]];
    const asks: [number, number][] = [[100.11, 1], [100.19, 2], [100.21, 4]];
    expect(groupLevels(bids, 0.1, 'bid', tick)).toEqual([[100, 3], [99.9, 4]]);
    expect(groupLevels(asks, 0.1, 'ask', tick)).toEqual([[100.2, 3], [100.3, 4]]);
  });
  it('an increment of one tick is the identity', () => {
    const lv: [number, number][] = [[1.23, 1]];
    expect(groupLevels(lv, tick, 'bid', tick)).toBe(lv);
  });
  it('has no float drift on awkward ticks', () => {
    expect(groupLevels([[0.4501, 1], [0.4499, 1]], 0.0005, 'bid', 0.0001)).toEqual([[0.45, 1], [0.4495, 1]]);
  });
  it('cumulative totals and consolidation across venues', () => {
    expect(cumulative([[1, 1], [2, 2.5], [3, 0.5]])).toEqual([1, 3.5, 4]);
    expect(mergeLevels([[[10, 1], [9, 1]], [[10, 2], [8, 1]]], -1, 5)).toEqual([[10, 3], [9, 1], [8, 1]]);
  });
});
