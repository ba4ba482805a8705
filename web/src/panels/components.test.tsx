import { describe, expect, it, vi, beforeEach } from 'vitest';
import { act, fireEvent, render, screen, within } from '@testing-library/react';
import { Watchlist, sortRows, type WatchRow } from './Watchlist';
import { Tape, filterTrades } from './Tape';
import { Ladder } from './Ladder';
import { Status, staleness } from './Status';
import { applyFrame, live } from '../store';
import type { Frame } from '../lib/types';

const chartCalls = vi.hoisted(() => ({ setData: [] as unknown[], update: [] as unknown[], scale: [] as unknown[], kinds: [] as unknown[] }));
vi.mock('lightweight-charts', () => {
  const series = (kind: string) => {
    chartCalls.kinds.push(kind);
    return {
      setData: (d: unknown) => chartCalls.setData.push([kind, d]),
      update: (b: unknown, historical?: boolean) => chartCalls.update.push([kind, b, !!historical]),
      applyOptions: () => {},
      priceScale: () => ({ applyOptions: (o: unknown) => chartCalls.scale.push(o) }),
    };
  };
  return {
    ColorType: { Solid: 'solid' },
    CrosshairMode: { Normal: 0 },
    CandlestickSeries: 'Candlestick',
    HistogramSeries: 'Histogram',
    LineSeries: 'Line',
    PriceScaleMode: { Normal: 0, Logarithmic: 1, Percentage: 2 },
    createChart: () => ({
      addSeries: series,
      panes: () => [{ setHeight: () => {} }, { setHeight: () => {} }],
      subscribeCrosshairMove: () => {},
      timeScale: () => ({ scrollToRealTime: () => {} }),
      applyOptions: () => {},
      remove: () => {},
    }),
  };
});

const rows: WatchRow[] = [
  { symbol: 'BTC/USD', last: 60000, change: -1.5, volume: 30, spark: [1, 2], precision: 2 },
  { symbol: 'ETH/USD', last: 3000, change: 2.25, volume: 500, spark: [], precision: 2 },
  { symbol: 'SOL/USD', last: 150, change: null, volume: 2000, spark: [], precision: 3 },
];

function frame(over: Partial<Frame>): Frame {
  return {
    type: 'frame',
    conn: { state: 'open', lastMessageAt: 1, messagesPerSecond: 10, channels: [], identity: null, problem: null },
    denied: [],
    tickers: [],
    book: null,
    trades: [],
    candles: null,
    analytics: {},
    ...over,
  };
}

// run the store's requestAnimationFrame callbacks synchronously
beforeEach(() => {
  vi.stubGlobal('requestAnimationFrame', (fn: FrameRequestCallback) => {
    fn(0);
    return 0;
  });
  live.paused = false;
});

describe('Watchlist', () => {
  it('sorts by column and filters by search', () => {
    expect(sortRows(rows, 'change', -1, '').map((r) => r.symbol)).toEqual(['ETH/USD', 'BTC/USD', 'SOL/USD']);
    expect(sortRows(rows, 'volume', 1, 'usd').map((r) => r.symbol)).toEqual(['BTC/USD', 'ETH/USD', 'SOL/USD']);
    const onSelect = vi.fn();
    render(<Watchlist rows={rows} selected="BTC/USD" onSelect={onSelect} />);
    fireEvent.click(screen.getByText(/^Last/));
    const body = () => screen.getAllByRole('row').slice(1).map((r) => r.getAttribute('data-symbol'));
    expect(body()).toEqual(['BTC/USD', 'ETH/USD', 'SOL/USD']); // last, descending
    fireEvent.click(screen.getByText(/^Last/));
    expect(body()).toEqual(['SOL/USD', 'ETH/USD', 'BTC/USD']);
    fireEvent.change(screen.getByLabelText('Search symbols'), { target: { value: 'eth' } });
    expect(body()).toEqual(['ETH/USD']);
    expect(screen.getByText('+2.25%')).toHaveClass('up');
    fireEvent.click(screen.getByText('ETH/USD'));
    expect(onSelect).toHaveBeenCalledWith('ETH/USD');
  });
});

describe('Tape', () => {
  it('shows new trades newest first with side colours and applies the size filter', () => {
    live.tape = [];
    render(<Tape pricePrecision={2} amountPrecision={3} />);
    const t = (id: string, price: number, amount: number, side: 'buy' | 'sell') => ({ id, venue: 'sim', price, amount, side, ts: 1000, count: 1 });
    act(() => applyFrame(frame({ trades: [t('a', 10, 0.5, 'buy'), t('b', 11, 2, 'sell')] })));
    const rowsEl = () => [...screen.getByTestId('tape-rows').children];
    expect(rowsEl().map((r) => r.className)).toEqual(['trow sell', 'trow buy']);
    expect(rowsEl()[0].textContent).toContain('11.00');
    fireEvent.change(screen.getByLabelText('Minimum trade size'), { target: { value: '1' } });
    expect(rowsEl()).toHaveLength(1);
    act(() => applyFrame(frame({ trades: [t('c', 12, 0.1, 'buy')] })));
    expect(rowsEl()).toHaveLength(1); // filtered out
    expect(filterTrades([t('x', 1, 5, 'buy')], 6)).toEqual([]);
  });
});

describe('Ladder', () => {
  it('renders best bid below best ask with cumulative bars and regroups', () => {
    const { rerender } = render(<Ladder tick={0.01} pricePrecision={2} amountPrecision={2} grouping={0.01} onGrouping={() => {}} />);
    act(() =>
      applyFrame(
        frame({
          book: { key: 'X|*', ts: 1, bids: [[100.05, 1], [100.01, 3]], asks: [[100.1, 2], [100.16, 2]] },
        }),
      ),
    );
    const bid = screen.getByTestId('best-bid');
    const ask = screen.getByTestId('best-ask');
    expect(bid.dataset.price).toBe('100.05');
    expect(ask.dataset.price).toBe('100.1');
    expect(within(bid).getByText('100.05')).toBeInTheDocument();
    expect((ask.querySelector('.bar') as HTMLElement).style.width).toBe('50%'); // 2 of max cum 4
    expect(screen.getByTestId('spread').textContent).toContain('spread 0.05');
    rerender(<Ladder tick={0.01} pricePrecision={2} amountPrecision={2} grouping={0.1} onGrouping={() => {}} />);
    expect(screen.getByTestId('best-bid').dataset.price).toBe('100');
    expect(screen.getByTestId('best-bid').textContent).toContain('4.00');
    expect(screen.getByTestId('best-ask').dataset.price).toBe('100.1');
  });
});

describe('Status', () => {
  it('marks stale and down venues', () => {
    expect(staleness(0.5, true)).toBe('live');
    expect(staleness(5, true)).toBe('stale');
    expect(staleness(null, false)).toBe('down');
    render(<Status feeds={[{ venue: 'sim', state: 'live', live: true, last_message_age_s: 4 }]} conn="open" wsAgeS={0.1} rate={5} />);
    expect(screen.getByTestId('venue-sim')).toHaveClass('stale');
    expect(screen.getByTestId('ws-status')).toHaveClass('live');
  });
});

describe('CandleChart', () => {
  it('sets data on reset and updates the last bar afterwards', async () => {
    const { CandleChart } = await import('./CandleChart');
    const onInterval = vi.fn();
    render(<CandleChart interval={60} onInterval={onInterval} pricePrecision={2} tick={0.01} dark />);
    const bar = { time: 60, open: 1, high: 2, low: 1, close: 2, volume: 3 };
    act(() => applyFrame(frame({ candles: { key: 'k', reset: true, bars: [bar] } })));
    expect(chartCalls.kinds).toEqual(['Candlestick', 'Line', 'Histogram']);
    expect(chartCalls.setData.map((c) => (c as unknown[])[0])).toEqual(['Candlestick', 'Histogram', 'Line']);
    act(() => applyFrame(frame({ candles: { key: 'k', reset: false, bars: [{ ...bar, close: 3, high: 3 }] } })));
    expect(chartCalls.update[0]).toEqual(['Candlestick', { time: 60, open: 1, high: 3, low: 1, close: 3 }, false]);
    // 20 more bars: the EMA line starts at the 20th bar with the simple average
    act(() =>
      applyFrame(frame({ candles: { key: 'k', reset: false, bars: Array.from({ length: 20 }, (_, i) => ({ ...bar, time: 120 + 60 * i, close: 10 })) } })),
    );
    const emaUpdates = chartCalls.update.filter((c) => (c as unknown[])[0] === 'Line');
    expect(emaUpdates[0]).toEqual(['Line', { time: 60 + 19 * 60, value: (3 + 19 * 10) / 20 }, false]);
    fireEvent.click(screen.getByRole('button', { name: 'Price scale' }));
    expect(chartCalls.scale).toContainEqual({ mode: 1 });
    expect(screen.getByTestId('legend').textContent).toContain('C 10.00');
    fireEvent.click(screen.getByRole('button', { name: '5m' }));
    expect(onInterval).toHaveBeenCalledWith(300);
  });
});
