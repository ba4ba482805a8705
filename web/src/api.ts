export interface Instrument {
  venue: string;
  symbol: string;
  tick_size: string;
  lot_size: string;
  price_precision: number;
  amount_precision: number;
}

export interface MarketRow {
  venue: string;
  symbol: string;
  last: string | null;
  percentage: string | null;
  baseVolume?: string | null;
  volume_24h?: string | null;
  [k: string]: unknown;
}

export interface FeedHealth {
  venue: string;
  state: string;
  live: boolean;
  last_message_age_s: number | null;
  messages_per_s?: number;
}

export async function getJson<T>(path: string): Promise<T | null> {
  try {
    const r = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (!r.ok && r.status !== 503) return null;
    return (await r.json()) as T;
  } catch {
    return null;
  }
}

/** Like getJson, but tells a tier refusal (403 `tier-required`) apart from other failures. */
export async function getJsonOrDenied<T>(path: string): Promise<{ data: T | null; denied: string | null }> {
  try {
    const r = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (r.status === 403) {
      const p = (await r.json().catch(() => ({}))) as { code?: string; detail?: string };
      return { data: null, denied: p.code === 'tier-required' ? (p.detail ?? 'not included in your tier') : null };
    }
    if (!r.ok && r.status !== 503) return { data: null, denied: null };
    return { data: (await r.json()) as T, denied: null };
  } catch {
    return { data: null, denied: null };
  }
}
