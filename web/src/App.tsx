import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { getJson, type FeedHealth, type Instrument, type MarketRow } from './api';
import { applyFrame, live, resetSelection } from './store';
import type { Frame, ToWorker } from './lib/types';
import { Watchlist, useClock, type WatchRow } from './panels/Watchlist';
import { CandleChart } from './panels/CandleChart';
import { Ladder } from './panels/Ladder';
import { DepthChart } from './panels/DepthChart';
import { Tape } from './panels/Tape';
import { Status } from './panels/Status';
import { Analytics, useOptions } from './panels/Analytics';
import { Heatmap } from './panels/Heatmap';
import { Account, useAuthFeatures, useSession } from './panels/Account';
import { TierNotice, deniedOf, denialFor } from './panels/TierNotice';
import { Backtests } from './panels/Backtests';
import type { User } from './lib/accounts';
import { chainCurrencies, hasSessionHint, pickSymbol, type OptionChain } from './lib/startup';

type Tab = 'chart' | 'book' | 'trades' | 'markets';
const TABS: { id: Tab; label: string }[] = [
  { id: 'chart', label: 'Chart' },
  { id: 'book', label: 'Book' },
  { id: 'trades', label: 'Trades' },
  { id: 'markets', label: 'Markets' },
];

function initialSymbol(): string {
  return new URLSearchParams(location.search).get('symbol') ?? localStorage.getItem('qs.symbol') ?? '';
}

/** The option chains the server has (`GET /`): the simulator's appear with its first tickers, so
 * an empty answer is asked again a few times. */
function useOptionChains(): OptionChain[] {
  const [chains, setChains] = useState<OptionChain[]>([]);
  useEffect(() => {
    let alive = true;
    let tries = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ask = async () => {
      const info = await getJson<{ option_chains?: OptionChain[] }>('/');
      if (!alive) return;
      const found = info?.option_chains ?? [];
      setChains(found);
      if (!found.length && ++tries < 6) timer = setTimeout(ask, 10_000);
    };
    void ask();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, []);
  return chains;
}

export function App() {
  const [instruments, setInstruments] = useState<Instrument[]>([]);
  const [symbol, setSymbol] = useState(initialSymbol);
  const [venue, setVenue] = useState<string | null>(null);
  const [interval, setIntervalS] = useState(() => Number(localStorage.getItem('qs.interval')) || 60);
  const [grouping, setGrouping] = useState(0);
  const [dark, setDark] = useState(() => localStorage.getItem('qs.theme') !== 'light');
  const [tab, setTab] = useState<Tab>('chart');
  const auth = useAuthFeatures();
  const [accountOpen, setAccountOpen] = useState(false);
  const [backtestsOpen, setBacktestsOpen] = useState(false);
  const [user, setUser] = useSession(auth);
  const chains = useOptionChains();
  const currency = symbol.split('/')[0] ?? '';
  // only where a chain exists: asking for ADA's would be a 404 on every load
  const hasChain = live.conn.channels.includes('options') && chainCurrencies(chains).has(currency);
  const options = useOptions(currency, hasChain, user ? `user:${user.id}` : 'anonymous');
  const [feeds, setFeeds] = useState<FeedHealth[]>([]);
  const [market, setMarket] = useState<Record<string, MarketRow>>({});
  const spark = useRef<Record<string, number[]>>({});
  const worker = useRef<Worker | null>(null);
  useClock(1000); // low-rate panels (watchlist, status) re-render once a second

  const symbols = useMemo(() => [...new Set(instruments.map((i) => i.symbol))].sort(), [instruments]);
  const venues = useMemo(() => [...new Set(instruments.map((i) => i.venue))].sort(), [instruments]);
  const meta = useMemo(() => {
    const found = instruments.find((i) => i.symbol === symbol && (venue === null || i.venue === venue));
    return {
      tick: found ? Number(found.tick_size) : 0.01,
      pp: found?.price_precision ?? 2,
      ap: found?.amount_precision ?? 4,
    };
  }, [instruments, symbol, venue]);
  const group = grouping >= meta.tick ? grouping : meta.tick;

  // instruments, then the worker
  useEffect(() => {
    let alive = true; // StrictMode (dev) runs this twice: only the surviving run starts a worker
    void getJson<{ data: Instrument[] }>('/api/v1/instruments').then((r) => {
      if (!alive) return;
      const list = r?.data ?? [];
      setInstruments(list);
      const syms = [...new Set(list.map((i) => i.symbol))].sort();
      setSymbol((s) => pickSymbol(syms, s));
      const w = new Worker(new URL('./worker/feed.worker.ts', import.meta.url), { type: 'module' });
      w.onmessage = (ev: MessageEvent<Frame>) => applyFrame(ev.data);
      const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
      const flushMs = Number(new URLSearchParams(location.search).get('flush')) || undefined;
      // a stream ticket only when a session may exist: an anonymous visitor gets no 401
      const signedIn = hasSessionHint();
      w.postMessage({ type: 'start', wsUrl, httpBase: location.origin, symbols: syms, flushMs, signedIn } satisfies ToWorker);
      worker.current = w;
      setWorkerReady(true);
    });
    const vis = () => worker.current?.postMessage({ type: 'visibility', hidden: document.hidden } satisfies ToWorker);
    document.addEventListener('visibilitychange', vis);
    return () => {
      alive = false;
      document.removeEventListener('visibilitychange', vis);
      worker.current?.terminate();
      worker.current = null;
    };
  }, []);
  const [workerReady, setWorkerReady] = useState(false);

  // signed in or out: the stream reconnects under the new identity (a fresh ticket, or none)
  const onUser = useCallback(
    (u: User | null) => {
      setUser(u);
      worker.current?.postMessage({ type: 'reconnect', signedIn: u !== null } satisfies ToWorker);
    },
    [setUser],
  );

  useEffect(() => {
    if (!workerReady || !symbol) return;
    worker.current!.postMessage({ type: 'select', symbol, venue, interval } satisfies ToWorker);
    localStorage.setItem('qs.symbol', symbol);
    localStorage.setItem('qs.interval', String(interval));
  }, [workerReady, symbol, venue, interval]);

  const selectSymbol = useCallback((s: string) => {
    setSymbol((prev) => {
      if (prev !== s) {
        resetSelection();
        setGrouping(0);
      }
      return s;
    });
    setTab((t) => (t === 'markets' ? 'chart' : t));
  }, []);

  // REST polling: health (staleness) and 24 h stats; sparklines sampled once a second
  useEffect(() => {
    let alive = true;
    const poll = async () => {
      const [h, m] = await Promise.all([
        getJson<{ feeds: FeedHealth[] }>('/health'),
        getJson<{ data: MarketRow[] }>('/api/market_data'),
      ]);
      if (!alive) return;
      if (h) setFeeds(h.feeds);
      if (m) {
        const bySymbol: Record<string, MarketRow> = {};
        for (const row of m.data) bySymbol[row.symbol] ??= row;
        setMarket(bySymbol);
      }
    };
    void poll();
    const id = setInterval(poll, document.hidden ? 10_000 : 3000);
    const sample = setInterval(() => {
      for (const [s, t] of live.tickers) {
        if (t.last === null) continue;
        const arr = (spark.current[s] ??= []);
        arr.push(t.last);
        if (arr.length > 120) arr.shift();
      }
    }, 1000);
    return () => {
      alive = false;
      clearInterval(id);
      clearInterval(sample);
    };
  }, []);

  useEffect(() => {
    document.documentElement.dataset.theme = dark ? 'dark' : 'light';
    localStorage.setItem('qs.theme', dark ? 'dark' : 'light');
  }, [dark]);

  const rows: WatchRow[] = symbols.map((s) => {
    const t = live.tickers.get(s);
    const m = market[s];
    const inst = instruments.find((i) => i.symbol === s);
    return {
      symbol: s,
      last: t?.last ?? (m?.last ? Number(m.last) : null),
      change: m?.percentage !== null && m?.percentage !== undefined ? Number(m.percentage) : null,
      volume: m?.baseVolume ? Number(m.baseVolume) : null,
      spark: spark.current[s] ?? [],
      precision: inst?.price_precision ?? 2,
    };
  });
  const wsAge = live.conn.lastMessageAt ? (Date.now() - live.conn.lastMessageAt) / 1000 : null;
  const denied = deniedOf(live.denied, symbol);

  return (
    <div className={`app tab-${tab}`} data-testid="app">
      <header className="top">
        <strong className="brand">Quant-SaaS</strong>
        <select aria-label="Symbol" value={symbol} onChange={(e) => selectSymbol(e.target.value)} data-testid="symbol-select">
          {symbols.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <select
          aria-label="Venue"
          value={venue ?? ''}
          onChange={(e) => {
            resetSelection();
            setVenue(e.target.value || null);
          }}
        >
          <option value="">all venues</option>
          {venues.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
        <Status
          feeds={feeds}
          conn={live.conn.state}
          wsAgeS={wsAge}
          rate={live.conn.messagesPerSecond}
          problem={live.conn.problem}
          identity={live.conn.identity}
        />
        {user && (
          <button onClick={() => setBacktestsOpen((o) => !o)} aria-expanded={backtestsOpen} data-testid="backtests-button">
            Backtests
          </button>
        )}
        {auth && (
          <button
            onClick={() => setAccountOpen((o) => !o)}
            aria-expanded={accountOpen}
            data-testid="account-button"
            className="account-button"
            title={user ? `Signed in as ${user.email}` : 'Sign in or create an account'}
          >
            {user ? `Account · ${user.tier}` : 'Sign in'}
          </button>
        )}
        <button className="theme" onClick={() => setDark((d) => !d)} aria-label="Toggle theme">
          {dark ? '☀' : '☾'}
        </button>
      </header>
      <main className="grid">
        <section className="pane pane-markets area-watch">
          <Watchlist rows={rows} selected={symbol} onSelect={selectSymbol} />
          <Analytics channels={live.conn.channels} latest={live.analytics} options={options} denied={denied} />
        </section>
        <section className="pane pane-chart area-chart">
          <TierNotice denial={denialFor(denied, symbol, ['trades', 'candles'])} what="Trades and candles" symbol={symbol} />
          <CandleChart interval={interval} onInterval={setIntervalS} pricePrecision={meta.pp} tick={meta.tick} dark={dark} />
        </section>
        <section className="pane pane-heat area-heat">
          <TierNotice denial={denialFor(denied, symbol, ['book'])} what="The order book" symbol={symbol} />
          <Heatmap tick={meta.tick} pricePrecision={meta.pp} />
        </section>
        <section className="pane pane-book area-depth">
          <DepthChart pricePrecision={meta.pp} />
        </section>
        <section className="pane pane-book area-ladder">
          <TierNotice denial={denialFor(denied, symbol, ['book'])} what="The order book" symbol={symbol} />
          <Ladder tick={meta.tick} pricePrecision={meta.pp} amountPrecision={meta.ap} grouping={group} onGrouping={setGrouping} />
        </section>
        <section className="pane pane-trades area-tape">
          <TierNotice denial={denialFor(denied, symbol, ['trades'])} what="Trades" symbol={symbol} />
          <Tape pricePrecision={meta.pp} amountPrecision={meta.ap} showVenue={venue === null && venues.length > 1} />
        </section>
      </main>
      {user && backtestsOpen && <Backtests onClose={() => setBacktestsOpen(false)} dark={dark} />}
      {auth && accountOpen && <Account features={auth} user={user} onUser={onUser} onClose={() => setAccountOpen(false)} />}
      <nav className="tabs" data-testid="tabs" role="tablist">
        {TABS.map((t) => (
          <button key={t.id} role="tab" aria-selected={tab === t.id} className={tab === t.id ? 'on' : ''} onClick={() => setTab(t.id)}>
            {t.label}
          </button>
        ))}
      </nav>
    </div>
  );
}
