// What the dashboard decides before asking the server anything it may not answer: whether a
// session may exist (so an anonymous visitor never triggers 401s), which symbol to show first,
// and which currencies have an option chain (so no 404s for the others).

/** Set by the server on the page's response when a session cookie came along (that cookie is
 * HttpOnly: the script cannot see it), removed when none did (src/quantsaas/api/web.py). */
export const SESSION_HINT = 'qs_signed_in';

export function hasSessionHint(cookies: string = document.cookie): boolean {
  return cookies.split(';').some((c) => c.trim().startsWith(`${SESSION_HINT}=`) && c.trim() !== `${SESSION_HINT}=`);
}

/** Kept in step by the page itself when it signs in or out (the server sets it again on each load). */
export function setSessionHint(on: boolean): void {
  document.cookie = on ? `${SESSION_HINT}=1; Path=/; SameSite=Strict` : `${SESSION_HINT}=; Path=/; Max-Age=0; SameSite=Strict`;
}

/** The market a newcomer sees first: the one asked for if it exists, else BTC/USD, else the first. */
export function pickSymbol(symbols: string[], wanted: string | null | undefined): string {
  if (wanted && symbols.includes(wanted)) return wanted;
  return symbols.includes('BTC/USD') ? 'BTC/USD' : (symbols[0] ?? '');
}

export interface OptionChain {
  venue: string;
  underlying: string;
  currency: string;
}

/** Currencies with an option chain (from `GET /`'s `option_chains`), for the venue if one is chosen. */
export function chainCurrencies(chains: OptionChain[] | undefined, venue: string | null = null): Set<string> {
  return new Set((chains ?? []).filter((c) => venue === null || c.venue === venue).map((c) => c.currency));
}
