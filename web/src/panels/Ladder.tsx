import { useEffect, useRef } from 'react';
import { cumulative, groupLevels } from '../lib/book';
import { live, onDraw, touchBook } from '../store';
import { fmt } from '../lib/format';

const ROWS = 14;

/** Order book ladder: asks above, bids below, grouped, with cumulative size bars. DOM rows are
 * created once and updated imperatively inside the animation-frame drawer. */
export function Ladder({
  tick,
  pricePrecision,
  amountPrecision,
  grouping,
  onGrouping,
}: {
  tick: number;
  pricePrecision: number;
  amountPrecision: number;
  grouping: number;
  onGrouping: (g: number) => void;
}) {
  const asksRef = useRef<HTMLDivElement>(null);
  const bidsRef = useRef<HTMLDivElement>(null);
  const spreadRef = useRef<HTMLDivElement>(null);
  const opts = useRef({ tick, pricePrecision, amountPrecision, grouping });
  opts.current = { tick, pricePrecision, amountPrecision, grouping };

  useEffect(() => {
    const make = (host: HTMLDivElement, side: 'bid' | 'ask') => {
      host.replaceChildren();
      const rows: HTMLDivElement[] = [];
      for (let i = 0; i < ROWS; i++) {
        const row = document.createElement('div');
        row.className = `lrow ${side}`;
        row.innerHTML = '<i class="bar"></i><span class="p"></span><span class="s"></span><span class="c"></span>';
        rows.push(row);
        host.appendChild(row);
      }
      return rows;
    };
    const askRows = make(asksRef.current!, 'ask');
    const bidRows = make(bidsRef.current!, 'bid');
    askRows[ROWS - 1].dataset.testid = 'best-ask';
    bidRows[0].dataset.testid = 'best-bid';
    const fill = (
      rows: HTMLDivElement[],
      levels: [number, number][],
      cums: number[],
      max: number,
      reverse: boolean,
    ) => {
      const { pricePrecision: pp, amountPrecision: ap } = opts.current;
      for (let i = 0; i < ROWS; i++) {
        const row = rows[reverse ? ROWS - 1 - i : i];
        const level = levels[i];
        const [bar, p, s, c] = row.children as unknown as HTMLElement[];
        if (!level) {
          p.textContent = s.textContent = c.textContent = '';
          bar.style.width = '0';
          row.dataset.price = '';
          continue;
        }
        p.textContent = fmt(level[0], pp);
        s.textContent = fmt(level[1], ap);
        c.textContent = fmt(cums[i], ap);
        row.dataset.price = String(level[0]);
        bar.style.width = `${((cums[i] / max) * 100).toFixed(1)}%`;
      }
    };
    const draw = () => {
      const { tick: t, grouping: g, pricePrecision: pp } = opts.current;
      const bids = groupLevels(live.book.bids, g, 'bid', t).slice(0, ROWS);
      const asks = groupLevels(live.book.asks, g, 'ask', t).slice(0, ROWS);
      const cb = cumulative(bids);
      const ca = cumulative(asks);
      const max = Math.max(cb[cb.length - 1] ?? 0, ca[ca.length - 1] ?? 0, 1e-12);
      fill(bidRows, bids, cb, max, false);
      fill(askRows, asks, ca, max, true);
      const bb = live.book.bids[0]?.[0];
      const ba = live.book.asks[0]?.[0];
      spreadRef.current!.textContent =
        bb !== undefined && ba !== undefined ? `spread ${fmt(ba - bb, pp)}  mid ${fmt((ba + bb) / 2, pp + 1)}` : 'waiting for book…';
    };
    draw();
    const off = onDraw((d) => {
      if (d.book) draw();
    });
    return () => {
      off();
    };
  }, []);

  useEffect(() => {
    // regroup immediately when the user changes grouping
    touchBook();
  }, [grouping]);

  const steps = [1, 5, 10, 50, 100, 500, 1000].map((k) => Number((k * tick).toFixed(pricePrecision)));
  return (
    <div className="panel ladder" data-testid="ladder">
      <div className="panel-head">
        <span>Order book</span>
        <label>
          group{' '}
          <select
            aria-label="Price grouping"
            value={grouping}
            onChange={(e) => onGrouping(Number(e.target.value))}
          >
            {steps.map((s) => (
              <option key={s} value={s}>
                {fmt(s, pricePrecision)}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="lhead">
        <span>Price</span>
        <span>Size</span>
        <span>Total</span>
      </div>
      <div ref={asksRef} className="lside asks" />
      <div ref={spreadRef} className="spread" data-testid="spread" />
      <div ref={bidsRef} className="lside bids" />
    </div>
  );
}
