import type { FeedHealth } from '../api';
import { problemLabel } from '../lib/access';
import type { ConnProblem, ConnState, Identity } from '../lib/types';

export function staleness(ageS: number | null, live: boolean): 'live' | 'stale' | 'down' {
  if (!live || ageS === null) return 'down';
  return ageS > 2 ? 'stale' : 'live';
}

/** Per-venue connection and staleness badges plus the stream's own state (and, when it is not
 * open, why: "sign in required", "connection limit reached", ...). */
export function Status({
  feeds,
  conn,
  wsAgeS,
  rate,
  problem = null,
  identity = null,
}: {
  feeds: FeedHealth[];
  conn: ConnState;
  wsAgeS: number | null;
  rate: number;
  problem?: ConnProblem | null;
  identity?: Identity;
}) {
  const wsState = conn !== 'open' ? 'down' : wsAgeS !== null && wsAgeS > 3 ? 'stale' : 'live';
  const who = identity === 'user' ? 'signed in' : identity === 'anonymous' ? 'anonymous (demo)' : '';
  const title = ['WebSocket stream', who, conn !== 'open' && problem ? problem.message : ''].filter(Boolean).join(' · ');
  return (
    <div className="status" data-testid="status">
      <span className={`badge ${wsState}`} data-testid="ws-status" data-identity={identity ?? ''} title={title}>
        stream {conn}
        {conn === 'open' ? ` · ${Math.round(rate)}/s` : ''}
        {conn !== 'open' && problem ? <span data-testid="ws-problem"> · {problemLabel(problem)}</span> : null}
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
