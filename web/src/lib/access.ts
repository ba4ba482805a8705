// Stream access states: what a refused handshake or a close code means, how long to wait before
// trying again, and the short label the status badge shows for it.
import { backoffDelay } from './backoff';
import type { ConnProblem } from './types';

/** Close codes of /ws (src/quantsaas/api/stream.py). */
export const CLOSE = {
  revoked: 4001,
  sessionEnded: 4002,
  tierChanged: 4003,
  slowConsumer: 4008,
  unauthorized: 4401,
  forbidden: 4403,
  tooMany: 4429,
  policy: 1008,
  tooBig: 1009,
  tryLater: 1013,
} as const;

const BY_CLOSE: Record<number, { code: string; message: string }> = {
  [CLOSE.revoked]: { code: 'revoked', message: 'credentials revoked' },
  [CLOSE.sessionEnded]: { code: 'session-ended', message: 'signed out (or the password changed)' },
  [CLOSE.tierChanged]: { code: 'tier-changed', message: 'your plan changed: reconnecting' },
  [CLOSE.slowConsumer]: { code: 'slow-consumer', message: 'the page fell behind the stream' },
  [CLOSE.unauthorized]: { code: 'credentials-required', message: 'sign in to use the stream' },
  [CLOSE.forbidden]: { code: 'origin-not-allowed', message: 'this page may not open the stream' },
  [CLOSE.tooMany]: { code: 'too-many-connections', message: 'too many open connections for your tier' },
  [CLOSE.policy]: { code: 'policy', message: 'closed by the server (too many messages)' },
  [CLOSE.tooBig]: { code: 'policy', message: 'closed by the server (message too big)' },
  [CLOSE.tryLater]: { code: 'unavailable', message: 'the server is not ready yet' },
};

/** The problem behind a close: the refusal message the server sent first, else the close code. */
export function closeProblem(closeCode: number, refusal: { code?: string; status?: number; message?: string } | null): ConnProblem {
  const known = BY_CLOSE[closeCode];
  if (refusal?.code)
    return { code: refusal.code, message: refusal.message ?? known?.message ?? refusal.code, status: refusal.status, closeCode };
  if (known) return { ...known, closeCode };
  return { code: 'disconnected', message: `connection lost (${closeCode})`, closeCode };
}

/** Wait before the next connect. Refusals that will not fix themselves soon wait longer; the
 * attempt count keeps growing across refusals, so nothing loops tightly. A 4401 without a ticket
 * means the server wants a sign-in: only a sign-in changes that (and reconnects at once), so the
 * page just looks again now and then. */
export function retryDelay(closeCode: number, attempt: number, withTicket = true, rand?: () => number): number {
  const base = backoffDelay(attempt, rand);
  if (closeCode === CLOSE.forbidden) return Math.max(base, 30_000);
  if (closeCode === CLOSE.unauthorized) return Math.max(base, withTicket ? 1_000 : 30_000);
  if (closeCode === CLOSE.tooMany) return Math.max(base, 5_000);
  return base;
}

const LABELS: Record<string, string> = {
  'credentials-required': 'sign in required',
  'ticket-invalid': 'sign in required',
  'key-invalid': 'sign in required',
  'too-many-connections': 'connection limit reached',
  'origin-not-allowed': 'origin not allowed',
  'rate-limited': 'rate limited',
  revoked: 'access revoked',
  'session-ended': 'sign in required',
  'tier-changed': 'plan changed, reconnecting',
  'slow-consumer': 'fell behind, reconnecting',
  policy: 'closed by server',
  unavailable: 'server not ready',
  unreachable: 'server unreachable',
  disconnected: 'reconnecting',
};

export function problemLabel(problem: ConnProblem): string {
  return LABELS[problem.code] ?? problem.message ?? problem.code;
}

/** `BTC-USD`, `btc/usd` -> `BTC/USD` (as the server names symbols in its messages). */
export const canonicalSymbol = (s: string) => s.replace('-', '/').toUpperCase();
