import { useEffect, useMemo, useRef, useState } from 'react';
import { fmt, fmtCompact, fmtPct } from '../lib/format';

export interface WatchRow {
  symbol: string;
  last: number | null;
  change: number | null; // percent
  volume: number | null;
  spark: number[];
  precision: number;
}

type SortKey = 'symbol' | 'last' | 'change' | 'volume';

export function sortRows(rows: WatchRow[], key: SortKey, dir: 1 | -1, query: string): WatchRow[] {
  const q = query.trim().toUpperCase();
  const out = rows.filter((r) => !q || r.symbol.toUpperCase().includes(q));
  out.sort((a, b) => {
    if (key === 'symbol') return dir * a.symbol.localeCompare(b.symbol);
    const x = a[key] ?? -Infinity;
    const y = b[key] ?? -Infinity;
    return dir * (x - y);
  });
  return out;
}

export function Sparkline({ points, width = 48, height = 16 }: { points: number[]; width?: number; height?: number }) {
  if (points.length < 2) return <svg className="spark" width={width} height={height} aria-hidden />;
  const lo = Math.min(...points);
  const hi = Math.max(...points);
  const span = hi - lo || 1;
  const d = points
    .map((p, i) => `${((i / (points.length - 1)) * width).toFixed(1)},${(height - 1 - ((p - lo) / span) * (height - 2)).toFixed(1)}`)
    .join(' ');
  const up = points[points.length - 1] >= points[0];
  return (
    <svg className="spark" width={width} height={height} aria-hidden>
      <polyline points={d} fill="none" stroke={up ? 'var(--up)' : 'var(--down)'} strokeWidth="1.2" />
    </svg>
  );
}

export function Watchlist({
  rows,
  selected,
  onSelect,
}: {
  rows: WatchRow[];
  selected: string;
  onSelect: (symbol: string) => void;
}) {
  const [sortKey, setSortKey] = useState<SortKey>('symbol');
  const [dir, setDir] = useState<1 | -1>(1);
  const [query, setQuery] = useState('');
  const shown = useMemo(() => sortRows(rows, sortKey, dir, query), [rows, sortKey, dir, query]);
  const header = (key: SortKey, label: string) => (
    <th
      onClick={() => {
        if (key === sortKey) setDir((d) => (d === 1 ? -1 : 1));
        else {
          setSortKey(key);
          setDir(key === 'symbol' ? 1 : -1);
        }
      }}
      aria-sort={key === sortKey ? (dir === 1 ? 'ascending' : 'descending') : 'none'}
    >
      {label}
      {key === sortKey ? (dir === 1 ? ' ▲' : ' ▼') : ''}
    </th>
  );
  return (
    <div className="panel watchlist" data-testid="watchlist">
      <div className="panel-head">
        <span>Markets</span>
        <input
          className="search"
          placeholder="Search"
          aria-label="Search symbols"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      <table>
        <thead>
          <tr>
            {header('symbol', 'Symbol')}
            {header('last', 'Last')}
            {header('change', '24h %')}
            {header('volume', 'Vol')}
            <th aria-label="trend" />
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr
              key={r.symbol}
              className={r.symbol === selected ? 'selected' : ''}
              onClick={() => onSelect(r.symbol)}
              data-symbol={r.symbol}
            >
              <td>{r.symbol}</td>
              <td className="num" data-testid={`last-${r.symbol}`}>{fmt(r.last, r.precision)}</td>
              <td className={`num ${r.change === null ? '' : r.change >= 0 ? 'up' : 'down'}`}>{fmtPct(r.change)}</td>
              <td className="num">{fmtCompact(r.volume)}</td>
              <td>
                <Sparkline points={r.spark} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Re-render a component every `ms` (low-rate panels read the live store on their own clock). */
export function useClock(ms: number): number {
  const [n, setN] = useState(0);
  const ref = useRef(0);
  useEffect(() => {
    const id = setInterval(() => setN(++ref.current), ms);
    return () => clearInterval(id);
  }, [ms]);
  return n;
}
