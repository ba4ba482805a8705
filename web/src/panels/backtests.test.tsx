import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { BacktestList, MetricsTable, TradeTable } from './Backtests';
import {
  candlesFromMarks,
  drawdownSeries,
  equitySeries,
  fillMarkers,
  metricRows,
  type BacktestResult,
  type BacktestSummary,
} from '../lib/backtests';

const S = 1_000_000_000;
const T0 = 1_704_067_200 * S;

/** A result shaped as backtest/results.py writes it (one USD instrument, six curve points). */
function result(): BacktestResult {
  return {
    id: '20240101T000000-abcdef01',
    strategy: { name: 'SmaCross', params: { fast: 10, slow: 30 } },
    data: { kind: 'sim', instruments: ['sim:BTC/USD'], from_ns: T0, to_ns: T0 + 300 * S },
    config: {},
    currencies: {
      USD: {
        cash_scale: 11,
        initial_cash: '1000000.00000000000',
        cash: '940000.00000000000',
        equity: '1000050.00000000000',
        metrics: {
          sample: '1m',
          periods_per_year: 525600,
          total_return: 0.00005,
          sharpe: 1.234,
          sortino: null,
          max_drawdown: 0.0002,
          max_drawdown_duration_s: 150,
          turnover_per_day: 12.5,
          fees: '60.00000000000',
          maker_fees: '0.00000000000',
          taker_fees: '60.00000000000',
          fill_ratio: 1,
          orders: 2,
          fills: 2,
          exposure_time: 0.5,
          mean_gross_leverage: 0.03,
        },
        curve: {
          equity: ['1000000', '1000000', '999800', '999900', '1000100', '1000050'],
          drawdown: [0, 0, 0.0002, 0.0001, 0, 0.00005],
        },
      },
    },
    instruments: [
      {
        venue: 'sim',
        symbol: 'BTC/USD',
        quote: 'USD',
        price_scale: 2,
        size_scale: 8,
        position: '1.00000000',
        marks: [null, '60000.000', '59800.000', '59900.000', '60100.000', '60050.000'],
      },
    ],
    curve_ts: [0, 60, 120, 180, 240, 300].map((s) => T0 + s * S),
    trades: [
      {
        venue: 'sim',
        symbol: 'BTC/USD',
        direction: 'long',
        entry_ns: T0 + 61 * S,
        exit_ns: null,
        size: '1.00000000',
        entry_price: '60000',
        exit_price: null,
        fees: '60.00000000000',
        pnl: '-60060.00000000000',
        fills: 1,
      },
    ],
    trade_count: 1,
    fills: [
      { order_id: 1, venue: 'sim', symbol: 'BTC/USD', side: 'buy', price: '60000.00', size: '0.50000000', liquidity: 'taker', fee: '30', ts_ns: T0 + 61 * S },
      { order_id: 1, venue: 'sim', symbol: 'BTC/USD', side: 'buy', price: '60000.00', size: '0.50000000', liquidity: 'taker', fee: '30', ts_ns: T0 + 62 * S },
      { order_id: 2, venue: 'sim', symbol: 'ETH/USD', side: 'sell', price: '3000.00', size: '1.00000000', liquidity: 'maker', fee: '0', ts_ns: T0 + 250 * S },
    ],
    fill_count: 3,
  };
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('backtest transforms', () => {
  it('turns the exact curve into chart points and a negative drawdown', () => {
    const r = result();
    expect(equitySeries(r, 'USD').map((p) => p.value)).toEqual([1000000, 1000000, 999800, 999900, 1000100, 1000050]);
    expect(equitySeries(r, 'USD')[1]!.time).toBe(T0 / S + 60);
    expect(drawdownSeries(r, 'USD').map((p) => p.value)).toEqual([-0, -0, -0.02, -0.01, -0, -0.005]);
    expect(equitySeries(r, 'EUR')).toEqual([]);
  });

  it('builds candles from marks and puts the fills of that instrument on them', () => {
    const r = result();
    const candles = candlesFromMarks(r, 0, 2);
    expect(candles).toEqual([
      { time: T0 / S, open: 60000, high: 60000, low: 60000, close: 60000 },
      { time: T0 / S + 120, open: 59800, high: 59900, low: 59800, close: 59900 },
      { time: T0 / S + 240, open: 60100, high: 60100, low: 60050, close: 60050 },
    ]);
    // two buys in the first candle become one marker; the ETH fill is another instrument's
    expect(fillMarkers(r, 0, candles)).toEqual([
      { time: T0 / S, position: 'belowBar', shape: 'arrowUp', color: '#26a69a', text: 'buy ×2' },
    ]);
  });

  it('formats the metrics with their convention', () => {
    const rows = Object.fromEntries(metricRows(result(), 'USD'));
    expect(rows['Final equity']).toBe('1000050.00000000000 USD');
    expect(rows['Sharpe (1m returns, ×√525600)']).toBe('1.23');
    expect(rows['Sortino']).toBe('—');
    expect(rows['Max drawdown']).toBe('0.02%');
    expect(rows['Max drawdown duration']).toBe('2.5 min');
    expect(rows['Fees (maker / taker)']).toBe('60.00000000000 (0.00000000000 / 60.00000000000)');
  });
});

describe('backtest panels', () => {
  it('renders the metrics table and the trade list', () => {
    render(
      <>
        <MetricsTable result={result()} currency="USD" />
        <TradeTable result={result()} />
      </>,
    );
    const table = screen.getByTestId('metrics-table');
    expect(within(table).getByText('Total return').nextSibling?.textContent).toBe('0.0050%');
    const trades = screen.getByTestId('trade-table');
    expect(within(trades).getByText('open')).toBeTruthy();
    expect(within(trades).getByText('-60060.00000000000').className).toBe('down');
  });

  it('lists saved results and selects one', () => {
    const items: BacktestSummary[] = [
      {
        id: 'a',
        strategy: { name: 'SmaCross', params: { fast: 5 } },
        data: { kind: 'imported', instruments: ['binance:BTC/USDT'] },
        trade_count: 3,
        headline: { USDT: { equity: '1', total_return: -0.01, sharpe: -0.5, max_drawdown: 0.02 } },
      },
      {
        id: 'b',
        strategy: { name: 'Maker', params: {} },
        data: { kind: 'sim' },
        trade_count: 0,
        headline: { USD: { equity: '1', total_return: null, sharpe: null, max_drawdown: null } },
      },
    ];
    const chosen: string[] = [];
    render(<BacktestList items={items} selected="a" onSelect={(id) => chosen.push(id)} />);
    const rows = screen.getAllByTestId('backtest-row');
    expect(rows[0]!.className).toBe('on');
    expect(rows[0]!.textContent).toContain('-1.000% USDT');
    fireEvent.click(rows[1]!);
    expect(chosen).toEqual(['b']);
  });

  it('says how to save a result when there is none', async () => {
    render(<BacktestList items={[]} selected={null} onSelect={() => {}} />);
    await waitFor(() => expect(screen.getByTestId('backtests-empty').textContent).toContain('--user'));
  });
});
