import { useEffect, useRef, useState } from 'react';
import { live, onDraw } from '../store';
import { fmt, fmtTime } from '../lib/format';
import type { TapeTrade } from '../lib/types';

const MAX_ROWS = 80;

export function filterTrades(trades: TapeTrade[], minSize: number): TapeTrade[] {
  return minSize > 0 ? trades.filter((t) => t.amount >= minSize) : trades;
}

/** Time & sales: newest first, side colours, same-ms prints aggregated, size filter, big-print
 * highlight. Rows are prepended imperatively per animation frame. */
export function Tape({
  pricePrecision,
  amountPrecision,
  showVenue = false,
}: {
  pricePrecision: number;
  amountPrecision: number;
  showVenue?: boolean;
}) {
  const [minSize, setMinSize] = useState(0);
  const [bigSize, setBigSize] = useState(0);
  const body = useRef<HTMLDivElement>(null);
  const conf = useRef({ minSize, bigSize, pricePrecision, amountPrecision, showVenue });
  conf.current = { minSize, bigSize, pricePrecision, amountPrecision, showVenue };

  useEffect(() => {
    const host = body.current!;
    const row = (t: TapeTrade) => {
      const { pricePrecision: pp, amountPrecision: ap, bigSize: big } = conf.current;
      const el = document.createElement('div');
      el.className = `trow ${t.side}${big > 0 && t.amount >= big ? ' big' : ''}`;
      el.innerHTML = `<span class="p"></span><span class="s"></span><span class="t"></span>`;
      const [p, s, ts] = el.children as unknown as HTMLElement[];
      p.textContent = fmt(t.price, pp);
      s.textContent = fmt(t.amount, ap) + (t.count > 1 ? ` ×${t.count}` : '');
      ts.textContent = (conf.current.showVenue ? `${t.venue.slice(0, 4)} ` : '') + fmtTime(t.ts).slice(0, 8);
      return el;
    };
    const rebuild = () => {
      host.replaceChildren(...filterTrades(live.tape, conf.current.minSize).slice(-MAX_ROWS).reverse().map(row));
    };
    rebuild();
    const off = onDraw((d) => {
      if (!d.trades.length) {
        if (d.book && live.tape.length === 0 && host.childElementCount) host.replaceChildren();
        return;
      }
      const shown = filterTrades(d.trades, conf.current.minSize).slice(-MAX_ROWS);
      if (!shown.length) return;
      const frag = document.createDocumentFragment();
      for (let i = shown.length - 1; i >= 0; i--) frag.appendChild(row(shown[i]));
      host.prepend(frag);
      while (host.childElementCount > MAX_ROWS) host.lastElementChild!.remove();
    });
    (host as unknown as { __rebuild: () => void }).__rebuild = rebuild;
    return off;
  }, []);

  useEffect(() => {
    (body.current as unknown as { __rebuild?: () => void })?.__rebuild?.();
  }, [minSize, bigSize, showVenue]);

  return (
    <div className="panel tape" data-testid="tape">
      <div className="panel-head">
        <span>Trades</span>
        <label>
          min{' '}
          <input
            type="number"
            min={0}
            step="any"
            aria-label="Minimum trade size"
            value={minSize || ''}
            placeholder="0"
            onChange={(e) => setMinSize(Number(e.target.value) || 0)}
          />
        </label>
        <label>
          big{' '}
          <input
            type="number"
            min={0}
            step="any"
            aria-label="Highlight trades from size"
            value={bigSize || ''}
            placeholder="—"
            onChange={(e) => setBigSize(Number(e.target.value) || 0)}
          />
        </label>
      </div>
      <div className="thead">
        <span>Price</span>
        <span>Size</span>
        <span>Time (UTC)</span>
      </div>
      <div ref={body} className="tbody" data-testid="tape-rows" />
    </div>
  );
}
