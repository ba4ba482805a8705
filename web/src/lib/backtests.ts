/** Backtest results as the API serves them (/api/v1/backtests), and the pure transforms the
 * dashboard draws from: equity and drawdown lines, candles built from the recorded marks,
 * fill markers on those candles, and the metrics table. Money arrives as exact decimal text;
 * it becomes a number only here, to be drawn. */

export interface Metrics {
  sample?: string;
  periods_per_year?: number;
  returns?: number;
  total_return?: number | null;
  sharpe?: number | null;
  sortino?: number | null;
  max_drawdown?: number;
  max_drawdown_duration_s?: number;
  turnover_per_day?: number | null;
  fees?: string;
  maker_fees?: string;
  taker_fees?: string;
  fill_ratio?: number | null;
  orders?: number;
  fills?: number;
  exposure_time?: number;
  mean_gross_leverage?: number;
}

export interface CurrencyBlock {
  cash_scale: number;
  initial_cash: string;
  cash: string;
  equity: string;
  metrics: Metrics;
  curve: { equity: string[]; drawdown: number[] };
}

export interface ResultInstrument {
  venue: string;
  symbol: string;
  quote: string;
  price_scale: number;
  size_scale: number;
  position: string;
  marks: (string | null)[];
}

export interface FillRow {
  order_id: number;
  venue: string;
  symbol: string;
  side: 'buy' | 'sell';
  price: string;
  size: string;
  liquidity: 'maker' | 'taker';
  fee: string;
  ts_ns: number;
}

export interface TripRow {
  venue: string;
  symbol: string;
  direction: 'long' | 'short';
  entry_ns: number;
  exit_ns: number | null;
  size: string;
  entry_price: string | null;
  exit_price: string | null;
  fees: string;
  pnl: string;
  fills: number;
}

export interface BacktestResult {
  id: string;
  created?: string;
  strategy: { name: string; file?: string; params: Record<string, unknown> };
  data: { kind: string; path?: string; instruments?: string[]; from_ns?: number; to_ns?: number; events?: number };
  config: Record<string, unknown>;
  currencies: Record<string, CurrencyBlock>;
  instruments: ResultInstrument[];
  curve_ts: number[];
  trades: TripRow[];
  trade_count: number;
  fills: FillRow[];
  fill_count: number;
}

export interface BacktestSummary {
  id: string;
  created?: string;
  strategy: { name: string; params: Record<string, unknown> };
  data: BacktestResult['data'];
  trade_count: number;
  headline: Record<string, { equity: string; total_return: number | null; sharpe: number | null; max_drawdown: number | null }>;
}

export interface Point {
  time: number;
  value: number;
}
export interface Candle {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
}
export interface Marker {
  time: number;
  position: 'belowBar' | 'aboveBar';
  shape: 'arrowUp' | 'arrowDown';
  color: string;
  text: string;
}

const seconds = (ns: number) => Math.floor(ns / 1e9);

/** One point per curve sample, at whole seconds (a later sample in the same second wins). */
function bySecond(ts: number[], values: number[]): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < ts.length && i < values.length; i++) {
    const time = seconds(ts[i]!);
    const value = values[i]!;
    if (out.length && out[out.length - 1]!.time === time) out[out.length - 1]!.value = value;
    else if (!out.length || time > out[out.length - 1]!.time) out.push({ time, value });
  }
  return out;
}

export function equitySeries(result: BacktestResult, currency: string): Point[] {
  const block = result.currencies[currency];
  if (!block) return [];
  return bySecond(result.curve_ts, block.curve.equity.map(Number));
}

/** Drawdown as a negative percentage, so it hangs below zero. */
export function drawdownSeries(result: BacktestResult, currency: string): Point[] {
  const block = result.currencies[currency];
  if (!block) return [];
  return bySecond(result.curve_ts, block.curve.drawdown.map((d) => -100 * d));
}

/** Candles of `perCandle` consecutive mark samples of one instrument (marks are the mid or
 * last price at each curve point). */
export function candlesFromMarks(result: BacktestResult, index: number, perCandle: number): Candle[] {
  const instrument = result.instruments[index];
  if (!instrument) return [];
  const out: Candle[] = [];
  const step = Math.max(1, Math.floor(perCandle));
  for (let start = 0; start < instrument.marks.length; start += step) {
    let candle: Candle | null = null;
    for (let i = start; i < Math.min(start + step, instrument.marks.length); i++) {
      const mark = instrument.marks[i];
      if (mark === null || mark === undefined) continue;
      const price = Number(mark);
      if (!candle) candle = { time: seconds(result.curve_ts[start]!), open: price, high: price, low: price, close: price };
      else {
        candle.high = Math.max(candle.high, price);
        candle.low = Math.min(candle.low, price);
        candle.close = price;
      }
    }
    if (candle && (!out.length || candle.time > out[out.length - 1]!.time)) out.push(candle);
  }
  return out;
}

/** One marker per candle and side: the fills of one instrument that fell inside it. */
export function fillMarkers(result: BacktestResult, index: number, candles: Candle[]): Marker[] {
  const instrument = result.instruments[index];
  if (!instrument || !candles.length) return [];
  const buckets = new Map<string, { time: number; side: 'buy' | 'sell'; count: number }>();
  for (const fill of result.fills) {
    if (fill.venue !== instrument.venue || fill.symbol !== instrument.symbol) continue;
    const t = seconds(fill.ts_ns);
    let lo = 0;
    let hi = candles.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (candles[mid]!.time <= t) lo = mid;
      else hi = mid - 1;
    }
    const time = candles[lo]!.time;
    const key = `${time}:${fill.side}`;
    const found = buckets.get(key);
    if (found) found.count += 1;
    else buckets.set(key, { time, side: fill.side, count: 1 });
  }
  return [...buckets.values()]
    .sort((a, b) => a.time - b.time || (a.side < b.side ? -1 : 1))
    .map((b) => ({
      time: b.time,
      position: b.side === 'buy' ? 'belowBar' : 'aboveBar',
      shape: b.side === 'buy' ? 'arrowUp' : 'arrowDown',
      color: b.side === 'buy' ? '#26a69a' : '#ef5350',
      text: b.count > 1 ? `${b.side} ×${b.count}` : b.side,
    }));
}

const pct = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`);
const num = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '—' : v.toFixed(digits));

function duration(s: number | undefined): string {
  if (s === undefined) return '—';
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

/** The metrics table of one currency: [label, value] rows, formulas as in backtest/metrics.py. */
export function metricRows(result: BacktestResult, currency: string): [string, string][] {
  const block = result.currencies[currency];
  if (!block) return [];
  const m = block.metrics;
  return [
    ['Final equity', `${block.equity} ${currency}`],
    ['Total return', pct(m.total_return, 4)],
    [`Sharpe (${m.sample ?? '?'} returns, ×√${Math.round(m.periods_per_year ?? 0)})`, num(m.sharpe)],
    ['Sortino', num(m.sortino)],
    ['Max drawdown', pct(m.max_drawdown)],
    ['Max drawdown duration', duration(m.max_drawdown_duration_s)],
    ['Turnover / day', num(m.turnover_per_day)],
    ['Fees (maker / taker)', `${m.fees ?? '0'} (${m.maker_fees ?? '0'} / ${m.taker_fees ?? '0'})`],
    ['Fill ratio', pct(m.fill_ratio)],
    ['Orders / fills', `${m.orders ?? 0} / ${m.fills ?? 0}`],
    ['Time in market', pct(m.exposure_time)],
    ['Mean gross leverage', num(m.mean_gross_leverage, 3)],
    ['Round trips', String(result.trade_count)],
  ];
}
