import { useEffect, useRef, useState } from 'react';
import {
  CandlestickSeries,
  HistogramSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
  type UTCTimestamp,
} from 'lightweight-charts';
import { getJsonOrDenied } from '../api';
import { chartTheme, CANDLE_COLORS } from './CandleChart';
import {
  candlesFromMarks,
  drawdownSeries,
  equitySeries,
  fillMarkers,
  metricRows,
  type BacktestResult,
  type BacktestSummary,
} from '../lib/backtests';

const MAX_CANDLES = 300;

const when = (ns: number | undefined) => (ns === undefined ? '—' : new Date(ns / 1e6).toISOString().replace('.000Z', 'Z'));
const params = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');

export function BacktestList({ items, selected, onSelect }: { items: BacktestSummary[]; selected: string | null; onSelect: (id: string) => void }) {
  if (!items.length)
    return (
      <p className="muted" data-testid="backtests-empty">
        No saved backtests yet: run <code>quantsaas backtest STRATEGY.py --user YOUR_EMAIL</code>.
      </p>
    );
  return (
    <table className="backtest-list" data-testid="backtest-list">
      <thead>
        <tr>
          <th>Strategy</th>
          <th>Data</th>
          <th>Return</th>
          <th>Sharpe</th>
          <th>Max DD</th>
        </tr>
      </thead>
      <tbody>
        {items.map((item) => {
          const [currency, head] = Object.entries(item.headline)[0] ?? ['', null];
          return (
            <tr key={item.id} className={item.id === selected ? 'on' : ''} onClick={() => onSelect(item.id)} data-testid="backtest-row">
              <td title={params(item.strategy.params)}>
                {item.strategy.name} <span className="muted">{params(item.strategy.params)}</span>
              </td>
              <td>
                {item.data.kind} {(item.data.instruments ?? []).join(', ')}
              </td>
              <td className={head && (head.total_return ?? 0) < 0 ? 'down' : 'up'}>
                {head?.total_return === null || head?.total_return === undefined ? '—' : `${(head.total_return * 100).toFixed(3)}%`} {currency}
              </td>
              <td>{head?.sharpe === null || head?.sharpe === undefined ? '—' : head.sharpe.toFixed(2)}</td>
              <td>{head?.max_drawdown === null || head?.max_drawdown === undefined ? '—' : `${(head.max_drawdown * 100).toFixed(2)}%`}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function MetricsTable({ result, currency }: { result: BacktestResult; currency: string }) {
  return (
    <table className="metrics" data-testid="metrics-table">
      <tbody>
        {metricRows(result, currency).map(([label, value]) => (
          <tr key={label}>
            <th scope="row">{label}</th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TradeTable({ result }: { result: BacktestResult }) {
  const rows = result.trades.slice(0, 200);
  return (
    <table className="trades" data-testid="trade-table">
      <thead>
        <tr>
          <th>Symbol</th>
          <th>Side</th>
          <th>Entry</th>
          <th>Exit</th>
          <th>Size</th>
          <th>PnL</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((t, i) => (
          <tr key={i}>
            <td>{t.symbol}</td>
            <td>{t.direction}</td>
            <td title={when(t.entry_ns)}>{t.entry_price ?? '—'}</td>
            <td title={t.exit_ns === null ? 'open' : when(t.exit_ns)}>{t.exit_price ?? 'open'}</td>
            <td>{t.size}</td>
            <td className={t.pnl.startsWith('-') ? 'down' : 'up'}>{t.pnl}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Equity with drawdown below it, and the candles of the first instrument with fill markers. */
export function BacktestCharts({ result, currency, dark }: { result: BacktestResult; currency: string; dark: boolean }) {
  const equityEl = useRef<HTMLDivElement>(null);
  const candleEl = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!equityEl.current || !candleEl.current) return;
    const theme = chartTheme(dark);
    const equityChart = createChart(equityEl.current, { ...theme, autoSize: true, timeScale: { timeVisible: true } });
    const equity = equityChart.addSeries(LineSeries, { color: '#2962ff', lineWidth: 2, title: `equity ${currency}` });
    equity.setData(equitySeries(result, currency).map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
    const drawdown = equityChart.addSeries(HistogramSeries, { color: CANDLE_COLORS.downVol, title: 'drawdown %' }, 1);
    drawdown.setData(drawdownSeries(result, currency).map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
    equityChart.timeScale().fitContent();
    const candleChart = createChart(candleEl.current, { ...theme, autoSize: true, timeScale: { timeVisible: true } });
    const candles = candleChart.addSeries(CandlestickSeries, {
      upColor: CANDLE_COLORS.up,
      downColor: CANDLE_COLORS.down,
      borderVisible: false,
      wickUpColor: CANDLE_COLORS.up,
      wickDownColor: CANDLE_COLORS.down,
    });
    const perCandle = Math.ceil(result.curve_ts.length / MAX_CANDLES);
    const bars = candlesFromMarks(result, 0, perCandle);
    candles.setData(bars.map((b) => ({ ...b, time: b.time as UTCTimestamp })));
    createSeriesMarkers(
      candles,
      fillMarkers(result, 0, bars).map((m) => ({ ...m, time: m.time as UTCTimestamp })),
    );
    candleChart.timeScale().fitContent();
    return () => {
      equityChart.remove();
      candleChart.remove();
    };
  }, [result, currency, dark]);
  return (
    <div className="backtest-charts">
      <div ref={equityEl} className="chart equity" data-testid="equity-chart" />
      <div ref={candleEl} className="chart candles" data-testid="backtest-candles" />
    </div>
  );
}

/** The backtests window: your saved results, one opened with its charts, metrics and trades. */
export function Backtests({ onClose, dark }: { onClose: () => void; dark: boolean }) {
  const [items, setItems] = useState<BacktestSummary[] | null>(null);
  const [denied, setDenied] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [result, setResult] = useState<BacktestResult | null>(null);
  useEffect(() => {
    let alive = true;
    void getJsonOrDenied<{ data: BacktestSummary[] }>('/api/v1/backtests').then(({ data, denied }) => {
      if (!alive) return;
      setDenied(denied);
      setItems(data?.data ?? []);
      setSelected((s) => s ?? data?.data[0]?.id ?? null);
    });
    return () => {
      alive = false;
    };
  }, []);
  useEffect(() => {
    if (!selected) return;
    let alive = true;
    void getJsonOrDenied<BacktestResult>(`/api/v1/backtests/${encodeURIComponent(selected)}`).then(({ data }) => {
      if (alive) setResult(data);
    });
    return () => {
      alive = false;
    };
  }, [selected]);
  const currency = result ? (Object.keys(result.currencies)[0] ?? '') : '';
  return (
    <div className="backtests panel" role="dialog" aria-label="Backtests" data-testid="backtests">
      <div className="panel-head">
        <span>Backtests</span>
        <button onClick={onClose} aria-label="Close backtests" className="close">
          ✕
        </button>
      </div>
      {denied && (
        <p className="down" role="alert">
          {denied}
        </p>
      )}
      {items === null ? <p className="muted">Loading…</p> : <BacktestList items={items} selected={selected} onSelect={setSelected} />}
      {result && (
        <div className="backtest-detail" data-testid="backtest-detail">
          <BacktestCharts result={result} currency={currency} dark={dark} />
          <div className="backtest-tables">
            <MetricsTable result={result} currency={currency} />
            <TradeTable result={result} />
          </div>
        </div>
      )}
    </div>
  );
}
