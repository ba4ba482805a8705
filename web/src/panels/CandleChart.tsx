import { useEffect, useRef, useState } from 'react';
import { ema } from '../lib/indicators';
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  PriceScaleMode,
  createChart,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts';
import { onDraw } from '../store';
import { fmt, fmtCompact } from '../lib/format';
import { INTERVALS, type Bar } from '../lib/types';

export const CANDLE_COLORS = { up: '#26a69a', down: '#ef5350', upVol: 'rgba(38,166,154,0.5)', downVol: 'rgba(239,83,80,0.5)' };

export function chartTheme(dark: boolean) {
  return {
    layout: {
      background: { type: ColorType.Solid, color: dark ? '#131722' : '#ffffff' },
      textColor: dark ? '#d1d4dc' : '#1f2328',
      // The library's own logo injects a <style> element, which the server's Content-Security-Policy
      // (style-src 'self') refuses; the licence's link to TradingView is in the panel head instead.
      attributionLogo: false,
      fontFamily: 'DejaVu Sans Mono, ui-monospace, monospace',
    },
    grid: {
      vertLines: { color: dark ? '#1e2230' : '#eef0f3' },
      horzLines: { color: dark ? '#1e2230' : '#eef0f3' },
    },
  };
}

const volumeOf = (b: Bar) => ({
  time: b.time as UTCTimestamp,
  value: b.volume,
  color: b.close >= b.open ? CANDLE_COLORS.upVol : CANDLE_COLORS.downVol,
});
const EMA_N = 20;
const SCALES = [
  { label: 'lin', mode: PriceScaleMode.Normal },
  { label: 'log', mode: PriceScaleMode.Logarithmic },
  { label: '%', mode: PriceScaleMode.Percentage },
];

const candleOf = (b: Bar) => ({ time: b.time as UTCTimestamp, open: b.open, high: b.high, low: b.low, close: b.close });

export function CandleChart({
  interval,
  onInterval,
  pricePrecision,
  tick,
  dark,
}: {
  interval: number;
  onInterval: (s: number) => void;
  pricePrecision: number;
  tick: number;
  dark: boolean;
}) {
  const host = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const seriesRef = useRef<ISeriesApi<'Candlestick'> | null>(null);
  const emaRef = useRef<ISeriesApi<'Line'> | null>(null);
  const [showEma, setShowEma] = useState(() => localStorage.getItem('qs.ema') !== 'off');
  const [scale, setScale] = useState(0);
  const precisionRef = useRef(pricePrecision);
  precisionRef.current = pricePrecision;

  useEffect(() => {
    const el = host.current!;
    const chart = createChart(el, {
      ...chartTheme(dark),
      autoSize: true,
      crosshair: { mode: CrosshairMode.Normal },
      timeScale: { timeVisible: true, secondsVisible: true, rightOffset: 4 },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.1 } },
    });
    const candles = chart.addSeries(CandlestickSeries, {
      upColor: CANDLE_COLORS.up,
      downColor: CANDLE_COLORS.down,
      borderVisible: false,
      wickUpColor: CANDLE_COLORS.up,
      wickDownColor: CANDLE_COLORS.down,
    });
    const emaLine = chart.addSeries(LineSeries, {
      color: '#f0b90b',
      lineWidth: 1,
      priceLineVisible: false,
      lastValueVisible: false,
      crosshairMarkerVisible: false,
    });
    emaRef.current = emaLine;
    const volume = chart.addSeries(HistogramSeries, { priceFormat: { type: 'volume' } }, 1);
    chart.panes()[1]?.setHeight(80);
    chartRef.current = chart;
    seriesRef.current = candles;
    const hooks = ((window as unknown as { __qs?: Record<string, unknown> }).__qs ??= {});
    Object.assign(hooks, { chart, candles, volume, ema: emaLine });
    // EMA over the bars the chart holds: full recompute on reset, last point otherwise
    const ordered: Bar[] = [];
    const emaValues: (number | null)[] = [];
    const emaPoint = (i: number) => ({ time: ordered[i].time as UTCTimestamp, value: emaValues[i] as number });
    const emaReset = () => {
      emaValues.splice(0, emaValues.length, ...ema(ordered.map((b) => b.close), EMA_N));
      emaLine.setData(ordered.map((_, i) => i).filter((i) => emaValues[i] !== null).map(emaPoint));
    };
    const emaLast = () => {
      const i = ordered.length - 1;
      const k = 2 / (EMA_N + 1);
      if (i < EMA_N - 1) emaValues[i] = null;
      else if (i === EMA_N - 1) emaValues[i] = ordered.reduce((a, b) => a + b.close, 0) / EMA_N;
      else emaValues[i] = ordered[i].close * k + (emaValues[i - 1] as number) * (1 - k);
      if (emaValues[i] !== null) emaLine.update(emaPoint(i));
    };

    let lastBar: Bar | null = null;
    const bars = new Map<number, Bar>();
    const showLegend = (b: Bar | null | undefined) => {
      if (!legend.current) return;
      if (!b) {
        legend.current.textContent = '';
        return;
      }
      const p = precisionRef.current;
      legend.current.textContent = `O ${fmt(b.open, p)}  H ${fmt(b.high, p)}  L ${fmt(b.low, p)}  C ${fmt(b.close, p)}  V ${fmtCompact(b.volume)}`;
      legend.current.className = `legend ${b.close >= b.open ? 'up' : 'down'}`;
    };
    chart.subscribeCrosshairMove((param) => {
      const t = param.time as number | undefined;
      showLegend(t !== undefined ? bars.get(t) : lastBar);
    });
    const off = onDraw((d) => {
      if (!d.candles) return;
      if (d.candles.reset) {
        bars.clear();
        for (const b of d.candles.bars) bars.set(b.time, b);
        candles.setData(d.candles.bars.map(candleOf));
        volume.setData(d.candles.bars.map(volumeOf));
        ordered.splice(0, ordered.length, ...d.candles.bars);
        emaReset();
        chart.timeScale().scrollToRealTime();
      } else {
        for (const b of d.candles.bars) {
          const older = lastBar !== null && b.time < lastBar.time; // v5 historical update
          bars.set(b.time, b);
          candles.update(candleOf(b), older);
          volume.update(volumeOf(b), older);
          if (!older) lastBar = b;
          const last = ordered[ordered.length - 1];
          if (last && last.time === b.time) ordered[ordered.length - 1] = b;
          else if (!last || b.time > last.time) ordered.push(b);
          else {
            const j = ordered.findIndex((x) => x.time >= b.time);
            if (ordered[j].time === b.time) ordered[j] = b;
            else ordered.splice(j, 0, b);
            emaReset();
            continue;
          }
          emaLast();
        }
      }
      if (d.candles.reset) lastBar = d.candles.bars[d.candles.bars.length - 1] ?? null;
      showLegend(lastBar);
    });
    return () => {
      off();
      chart.remove();
      chartRef.current = null;
      seriesRef.current = null;
    };
    // the chart is created once; theme and precision are applied below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    chartRef.current?.applyOptions(chartTheme(dark));
  }, [dark]);

  useEffect(() => {
    emaRef.current?.applyOptions({ visible: showEma });
    localStorage.setItem('qs.ema', showEma ? 'on' : 'off');
  }, [showEma]);

  useEffect(() => {
    seriesRef.current?.priceScale().applyOptions({ mode: SCALES[scale].mode });
  }, [scale]);

  useEffect(() => {
    seriesRef.current?.applyOptions({ priceFormat: { type: 'price', precision: pricePrecision, minMove: tick } });
  }, [pricePrecision, tick]);

  return (
    <div className="panel chart" data-testid="chart">
      <div className="panel-head">
        <div className="intervals" role="group" aria-label="Interval">
          {INTERVALS.map((i) => (
            <button
              key={i.seconds}
              className={i.seconds === interval ? 'on' : ''}
              aria-pressed={i.seconds === interval}
              onClick={() => onInterval(i.seconds)}
            >
              {i.label}
            </button>
          ))}
        </div>
        <button className={showEma ? 'on' : ''} aria-pressed={showEma} onClick={() => setShowEma((v) => !v)} title="Exponential moving average of 20 bars">
          EMA{EMA_N}
        </button>
        <button onClick={() => setScale((i) => (i + 1) % SCALES.length)} aria-label="Price scale" title="Price scale: linear, log, percent">
          {SCALES[scale].label}
        </button>
        <div ref={legend} className="legend" data-testid="legend" />
        {/* TradingView Lightweight Charts™ Copyright (c) 2025 TradingView, Inc. https://www.tradingview.com/ */}
        <a
          className="attribution"
          href="https://www.tradingview.com/"
          target="_blank"
          rel="noopener noreferrer"
          title="Charting by TradingView Lightweight Charts™ (c) TradingView, Inc."
          data-testid="chart-attribution"
        >
          TradingView
        </a>
      </div>
      <div ref={host} className="chart-host" />
    </div>
  );
}
