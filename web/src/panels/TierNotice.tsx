import type { Denial } from '../lib/types';

/** The denials that concern `symbol` (its own, and whole channels the tier leaves out). */
export function deniedOf(denied: Denial[], symbol: string): Denial[] {
  return denied.filter((d) => d.symbol === symbol || d.symbol === '*');
}

/** The first denial of `symbol` among `channels`, if the tier leaves any of them out. */
export function denialFor(denied: Denial[], symbol: string, channels: string[]): Denial | null {
  return denied.find((d) => (d.symbol === symbol || d.symbol === '*') && (d.channel === '*' || channels.includes(d.channel))) ?? null;
}

/** A clear note on a panel whose data the caller's tier does not include (instead of an empty
 * panel that looks broken). */
export function TierNotice({ denial, what, symbol }: { denial: Denial | null; what: string; symbol: string }) {
  if (!denial) return null;
  return (
    <div className="tier-notice" role="note" data-testid="tier-notice" data-channel={denial.channel}>
      <strong>
        {what} for {symbol} {what.endsWith('s') ? 'are' : 'is'} not in your tier.
      </strong>{' '}
      <span className="muted-inline">{denial.message}. Pick another symbol, or upgrade.</span>
    </div>
  );
}
