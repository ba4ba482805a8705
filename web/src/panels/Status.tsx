import type { FeedHealth } from '../api';
import type { ConnState } from '../lib/types';

export function staleness(ageS: number | null, live: boolean): 'live' | 'stale' | 'down' {
  if (!live || ageS === null) return 'down';
  return ageS > 2 ? 'stale' : 'live';
}

/** Per-venue connection and staleness badges plus the stream's own state. */
export function Status({
  feeds,
  conn,
  wsAgeS,
  rate,
}: {
  feeds: FeedHealth[];
  conn: ConnState;
  wsAgeS: number | null;
  rate: number;
}) {
  const wsState = conn !== 'open' ? 'down' : wsAgeS !== null && wsAgeS > 3 ? 'stale' : 'live';
  return (
    <div className="status" data-testid="status">
      <span className={`badge ${wsState}`} data-testid="ws-status" title="WebSocket stream">
        stream {conn}
        {conn === 'open' ? ` · ${Math.round(rate)}/s` : ''}
      </span>
      {feeds.map((f) => {
        const s = staleness(f.last_message_age_s, f.live);
        return (
          <span key={f.venue} className={`badge ${s}`} data-testid={`venue-${f.venue}`} title={`feed ${f.state}`}>
            {f.venue} {s}
            {f.last_message_age_s !== null ? ` ${f.last_message_age_s.toFixed(1)}s` : ''}
          </span>
        );
      })}
    </div>
  );
}
