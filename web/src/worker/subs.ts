// What the caller's tier does not include, learnt from the server: a subscription refused with
// `tier_required`, or a REST 403 `tier-required`. Later requests leave those channel/symbol pairs
// out, and the panels show a notice for them instead of staying empty. A tier leaves out whole
// channels or whole symbols: those are kept as `channel|*` and `*|symbol`.
import { canonicalSymbol } from '../lib/access';
import type { Denial } from '../lib/types';

export interface SubRequest {
  op: 'subscribe' | 'unsubscribe';
  channels: string[];
  symbols: string[];
  venues?: string[];
}

const NAMED = /does not include (the venue )?(\S+?)\.?$/;

export class Entitlements {
  private denied = new Map<string, string>();

  clear(): void {
    this.denied.clear();
  }

  isDenied(channel: string, symbol: string): boolean {
    const s = canonicalSymbol(symbol);
    return this.denied.has(`${channel}|${s}`) || this.denied.has(`${channel}|*`) || this.denied.has(`*|${s}`);
  }

  /** `channel` of `symbol` is not in the tier; `*` for either means all of them. */
  deny(channel: string, symbol: string, message: string): void {
    this.denied.set(`${channel}|${symbol === '*' ? '*' : canonicalSymbol(symbol)}`, message);
  }

  list(): Denial[] {
    return [...this.denied].map(([key, message]) => {
      const [channel, symbol] = key.split('|');
      return { channel, symbol, message };
    });
  }

  /** The request without pairs known to be denied; null when nothing is left to ask for. */
  filter(req: SubRequest): SubRequest | null {
    const channels = req.channels.filter((c) => req.symbols.some((s) => !this.isDenied(c, s)));
    const symbols = req.symbols.filter((s) => channels.some((c) => !this.isDenied(c, s)));
    return channels.length && symbols.length ? { ...req, channels, symbols } : null;
  }

  /** `req` was refused with `message`: record what it tells, and return the smaller requests
   * still worth asking for. Each answer strictly shrinks the request, so this always ends. */
  refused(req: SubRequest, message: string): SubRequest[] {
    const denyAll = (channels: string[], symbols: string[]) => {
      for (const c of channels) for (const s of symbols) this.deny(c, s, message);
    };
    const m = NAMED.exec(message);
    if (m && m[1]) {
      denyAll(req.channels, req.symbols); // a venue the request asked for (or implied)
      return [];
    }
    if (m && req.channels.includes(m[2])) {
      this.deny(m[2], '*', message); // the tier leaves out the whole channel
      const rest = req.channels.filter((c) => c !== m[2]);
      return rest.length ? [{ ...req, channels: rest }] : [];
    }
    const named = m ? canonicalSymbol(m[2]) : null;
    if (named && req.symbols.some((s) => canonicalSymbol(s) === named)) {
      this.deny('*', named, message); // the tier leaves out the whole symbol
      const rest = req.symbols.filter((s) => canonicalSymbol(s) !== named);
      return rest.length ? [{ ...req, symbols: rest }] : [];
    }
    // a message we cannot read: ask piece by piece
    if (req.symbols.length > 1) return req.symbols.map((s) => ({ ...req, symbols: [s] }));
    if (req.channels.length > 1) return req.channels.map((c) => ({ ...req, channels: [c] }));
    denyAll(req.channels, req.symbols);
    return [];
  }
}
