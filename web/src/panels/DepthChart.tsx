import { useEffect, useRef } from 'react';
import { cumulative } from '../lib/book';
import { live, onDraw } from '../store';
import { fmt } from '../lib/format';
import type { Level } from '../lib/types';

export const DEPTH_COLORS = {
  bidFill: [24, 94, 80] as const,
  askFill: [110, 36, 44] as const,
  bidLine: '#26a69a',
  askLine: '#ef5350',
};

export interface DepthGeometry {
  width: number;
  height: number;
  lo: number;
  hi: number;
  maxCum: number;
  pad: number;
}

/** Price range and scale for a cumulative depth chart centred on the mid. */
export function depthGeometry(bids: Level[], asks: Level[], width: number, height: number, levels = 60): DepthGeometry | null {
  if (!bids.length || !asks.length) return null;
  const b = bids.slice(0, levels);
  const a = asks.slice(0, levels);
  const mid = (b[0][0] + a[0][0]) / 2;
  const half = Math.max(mid - b[b.length - 1][0], a[a.length - 1][0] - mid);
  const cb = cumulative(b);
  const ca = cumulative(a);
  const maxCum = Math.max(cb[cb.length - 1], ca[ca.length - 1]);
  return { width, height, lo: mid - half, hi: mid + half, maxCum: maxCum * 1.1, pad: 16 };
}

export const xOf = (g: DepthGeometry, price: number) => ((price - g.lo) / (g.hi - g.lo)) * g.width;
export const yOf = (g: DepthGeometry, cum: number) => g.height - g.pad - (cum / g.maxCum) * (g.height - g.pad - 4);

/** Canvas 2D cumulative depth chart (bids left, asks right). */
export function DepthChart({ pricePrecision, levels = 60 }: { pricePrecision: number; levels?: number }) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const precision = useRef(pricePrecision);
  precision.current = pricePrecision;

  useEffect(() => {
    const canvas = canvasRef.current!;
    const ctx = canvas.getContext('2d');
    const hooks = ((window as unknown as { __qs?: Record<string, unknown> }).__qs ??= {});
    let size = { w: 0, h: 0, dpr: 1 };
    const resize = () => {
      const rect = canvas.getBoundingClientRect();
      const dpr = window.devicePixelRatio || 1;
      size = { w: Math.max(1, Math.floor(rect.width)), h: Math.max(1, Math.floor(rect.height)), dpr };
      canvas.width = size.w * dpr;
      canvas.height = size.h * dpr;
    };
    const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(() => (resize(), draw())) : null;
    ro?.observe(canvas);
    resize();
    const draw = () => {
      if (!ctx) return;
      const { w, h, dpr } = size;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const css = getComputedStyle(canvas);
      ctx.fillStyle = css.getPropertyValue('--panel').trim() || '#131722';
      ctx.fillRect(0, 0, w, h);
      const bids = live.book.bids.slice(0, levels);
      const asks = live.book.asks.slice(0, levels);
      const g = depthGeometry(bids, asks, w, h, levels);
      hooks.depth = g ? { geometry: g, bids, asks } : null;
      if (!g) return;
      const side = (lv: Level[], fill: readonly number[], line: string, dir: 1 | -1) => {
        const cum = cumulative(lv);
        const base = h - g.pad;
        ctx.beginPath();
        ctx.moveTo(xOf(g, lv[0][0]), base);
        for (let i = 0; i < lv.length; i++) {
          const x = xOf(g, lv[i][0]);
          const prev = i === 0 ? 0 : cum[i - 1];
          ctx.lineTo(x, yOf(g, prev));
          ctx.lineTo(x, yOf(g, cum[i]));
        }
        const edge = dir === -1 ? 0 : w;
        ctx.lineTo(edge, yOf(g, cum[cum.length - 1]));
        ctx.lineTo(edge, base);
        ctx.closePath();
        ctx.fillStyle = `rgb(${fill.join(',')})`;
        ctx.fill();
        ctx.strokeStyle = line;
        ctx.lineWidth = 1.5;
        ctx.stroke();
      };
      side(bids, DEPTH_COLORS.bidFill, DEPTH_COLORS.bidLine, -1);
      side(asks, DEPTH_COLORS.askFill, DEPTH_COLORS.askLine, 1);
      ctx.fillStyle = css.getPropertyValue('--muted').trim() || '#888';
      ctx.font = '11px DejaVu Sans Mono, monospace';
      ctx.textBaseline = 'bottom';
      const p = precision.current;
      ctx.textAlign = 'left';
      ctx.fillText(fmt(g.lo, p), 2, h - 1);
      ctx.textAlign = 'right';
      ctx.fillText(fmt(g.hi, p), w - 2, h - 1);
      ctx.textAlign = 'center';
      ctx.fillText(fmt((g.lo + g.hi) / 2, p), w / 2, h - 1);
    };
    draw();
    const off = onDraw((d) => {
      if (d.book) draw();
    });
    return () => {
      off();
      ro?.disconnect();
    };
  }, [levels]);

  return (
    <div className="panel depth" data-testid="depth">
      <div className="panel-head">
        <span>Depth</span>
      </div>
      <canvas ref={canvasRef} data-testid="depth-canvas" />
    </div>
  );
}
