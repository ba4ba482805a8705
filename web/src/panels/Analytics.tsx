import { useEffect, useState } from 'react';
import { Sparkline } from './Watchlist';
import { getJsonOrDenied } from '../api';
import { ANALYTICS_PRIMARY, type Denial, type Frame } from '../lib/types';

interface SmileExpiry {
  expiry: number;
  expiry_datetime: string;
  forward: number;
  atm_iv: number | null;
  rr25: number | null;
  bf25: number | null;
  smile: { strike: number; iv: number; call_delta: number }[];
}
interface ChainOption {
  kind: string;
  strike: string;
  mark_iv: number | null;
  greeks: Record<string, number | null>;
  ours?: Record<string, number | null>;
}
export interface OptionsView {
  expiries: SmileExpiry[];
  atm: (ChainOption & { expiry: string }) | null;
}
/** The options routes answered 403 tier-required: polling stops and the panel says why. */
export interface OptionsDenied {
  denied: string;
}

const num = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));

/** Smile and greeks for the selected symbol's base currency, polled from REST every 5 s. */
export function useOptions(currency: string, enabled: boolean, who = ''): OptionsView | OptionsDenied | null {
  const [view, setView] = useState<OptionsView | OptionsDenied | null>(null);
  useEffect(() => {
    setView(null);
    if (!enabled || !currency) return;
    let alive = true;
    const poll = async () => {
      const [smileR, chainR] = await Promise.all([
        getJsonOrDenied<{ expiries: SmileExpiry[] }>(`/api/v1/options/${currency}/smile`),
        getJsonOrDenied<{ expiries: { expiry_datetime: string; options: ChainOption[] }[] }>(`/api/v1/options/${currency}/chain`),
      ]);
      if (!alive) return;
      const denied = smileR.denied ?? chainR.denied;
      if (denied) {
        clearInterval(id); // asking again will not change the answer
        setView({ denied });
        return;
      }
      const smile = smileR.data;
      const chain = chainR.data;
      if (!smile?.expiries?.length) {
        setView(null);
        return;
      }
      let atm: OptionsView['atm'] = null;
      const first = chain?.expiries?.[0];
      const fwd = smile.expiries[0].forward;
      if (first) {
        for (const o of first.options) {
          if (o.kind !== 'call') continue;
          if (!atm || Math.abs(Number(o.strike) - fwd) < Math.abs(Number(atm.strike) - fwd)) atm = { ...o, expiry: first.expiry_datetime };
        }
      }
      setView({ expiries: smile.expiries, atm });
    };
    void poll();
    const id = setInterval(poll, 5000);
    return () => {
      alive = false;
      clearInterval(id);
    };
  }, [currency, enabled, who]); // `who`: signing in or out may change the answer
  return view;
}

export function SmileChart({ expiry, width = 220, height = 90 }: { expiry: SmileExpiry; width?: number; height?: number }) {
  const pts = expiry.smile.filter((p) => Number.isFinite(p.iv));
  if (pts.length < 2) return null;
  const ks = pts.map((p) => p.strike);
  const vs = pts.map((p) => p.iv);
  const [k0, k1] = [Math.min(...ks), Math.max(...ks)];
  const [v0, v1] = [Math.min(...vs), Math.max(...vs)];
  const x = (k: number) => 4 + ((k - k0) / (k1 - k0 || 1)) * (width - 8);
  const y = (v: number) => height - 12 - ((v - v0) / (v1 - v0 || 1)) * (height - 20);
  return (
    <svg width={width} height={height} className="smile" data-testid="smile" role="img" aria-label="volatility smile">
      <line x1={x(expiry.forward)} x2={x(expiry.forward)} y1={0} y2={height - 12} stroke="var(--muted)" strokeDasharray="2 2" />
      <polyline fill="none" stroke="var(--accent)" strokeWidth="1.5" points={pts.map((p) => `${x(p.strike).toFixed(1)},${y(p.iv).toFixed(1)}`).join(' ')} />
      {pts.map((p) => (
        <circle key={p.strike} cx={x(p.strike)} cy={y(p.iv)} r="2" fill="var(--accent)" />
      ))}
      <text x={2} y={height - 1} fontSize="9" fill="var(--muted)">{k0}</text>
      <text x={width - 2} y={height - 1} fontSize="9" fill="var(--muted)" textAnchor="end">{k1}</text>
      <text x={2} y={9} fontSize="9" fill="var(--muted)">{num(v1, 0)}%</text>
    </svg>
  );
}

const LABELS: Record<string, string> = { ofi: 'OFI (L1, normalised)', vpin: 'VPIN' };

/** OFI / VPIN when the server offers those channels; option smile and greeks when it has options. */
export function Analytics({
  channels,
  latest,
  options: optionsOrDenied,
  denied = [],
}: {
  channels: string[];
  latest: Frame['analytics'];
  options: OptionsView | OptionsDenied | null;
  denied?: Denial[]; // the selected symbol's channels outside the tier
}) {
  const offered = ['ofi', 'vpin'].filter((c) => channels.includes(c));
  const options = optionsOrDenied && 'expiries' in optionsOrDenied ? optionsOrDenied : null;
  const optionsDenied = optionsOrDenied && 'denied' in optionsOrDenied ? optionsOrDenied.denied : null;
  const deniedOf = (c: string) => denied.find((d) => d.channel === c || d.channel === '*');
  return (
    <div className="panel analytics" data-testid="analytics">
      <div className="panel-head">
        <span>Analytics</span>
      </div>
      <div className="analytics-body">
        {offered.length === 0 && !options && <p className="muted">No analytics on this server (OFI, VPIN and option greeks appear when offered).</p>}
        {offered.map((c) => {
          const a = latest[c];
          const v = a?.values[ANALYTICS_PRIMARY[c]];
          const refused = deniedOf(c);
          if (refused)
            return (
              <div key={c} className="metric" data-testid={`metric-${c}`}>
                <span className="mlabel">{LABELS[c] ?? c}</span>
                <span className="tier-notice inline" data-testid="tier-notice" title={refused.message}>
                  not in your tier
                </span>
              </div>
            );
          return (
            <div key={c} className="metric" data-testid={`metric-${c}`}>
              <span className="mlabel">{LABELS[c] ?? c}</span>
              <span className="num">{v === undefined ? (a ? 'calibrating' : 'waiting…') : num(v, c === 'vpin' ? 3 : 2)}</span>
              <Sparkline points={a?.history.slice(-120) ?? []} width={70} />
            </div>
          );
        })}
        {optionsDenied && (
          <p className="tier-notice" data-testid="tier-notice" role="note">
            Options: {optionsDenied}. Upgrade your tier to see the smile and greeks.
          </p>
        )}
        {options && (
          <div className="options" data-testid="options">
            <div className="mlabel">
              Smile {options.expiries[0].expiry_datetime.slice(0, 10)} · ATM {num(options.expiries[0].atm_iv, 1)}% · RR25 {num(options.expiries[0].rr25, 1)} · BF25{' '}
              {num(options.expiries[0].bf25, 1)}
            </div>
            <SmileChart expiry={options.expiries[0]} />
            <table className="term">
              <tbody>
                {options.expiries.slice(0, 4).map((e) => (
                  <tr key={e.expiry}>
                    <td>{e.expiry_datetime.slice(0, 10)}</td>
                    <td className="num">ATM {num(e.atm_iv, 1)}%</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {options.atm && (
              <div className="greeks" data-testid="greeks">
                ATM call {options.atm.strike}: Δ {num(options.atm.ours?.delta ?? options.atm.greeks.delta, 3)} Γ{' '}
                {num((options.atm.ours?.gamma ?? options.atm.greeks.gamma ?? NaN) * 1e4, 3)}e-4 ν {num(options.atm.ours?.vega ?? options.atm.greeks.vega, 2)} Θ{' '}
                {num(options.atm.ours?.theta ?? options.atm.greeks.theta, 2)}
              </div>
            )}
          </div>
        )}
      </div>
    </div>
  );
}
