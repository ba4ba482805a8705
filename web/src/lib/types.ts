// Shared shapes between the feed worker and the UI thread.
export type Level = [price: number, size: number];

export interface Bar {
  time: number; // bucket start, seconds (UTCTimestamp)
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export interface TapeTrade {
  id: string;
  venue: string;
  price: number;
  amount: number;
  side: 'buy' | 'sell';
  ts: number; // ms
  count: number; // same-ms prints aggregated into this row
}

export interface TickerState {
  symbol: string;
  last: number | null;
  bid: number | null;
  ask: number | null;
  ts: number;
}

export type ConnState = 'connecting' | 'open' | 'closed';

/** Who the stream runs as: a signed-in user (ticket), anonymous (no session), or not known yet. */
export type Identity = 'user' | 'anonymous' | null;

/** Why the stream is not (or was not) open: a refused handshake, a close code, a ticket failure. */
export interface ConnProblem {
  code: string;
  message: string;
  status?: number;
  closeCode?: number;
}

/** A channel of a symbol the caller's tier does not include (socket `tier_required` or REST 403). */
export interface Denial {
  channel: string;
  symbol: string;
  message: string;
}

export interface Conn {
  state: ConnState;
  lastMessageAt: number;
  messagesPerSecond: number;
  channels: string[];
  identity: Identity;
  problem: ConnProblem | null;
}

/** The recorded books of the last minute, one per `stepMs` (the heatmap fills its past with them). */
export interface BookHistory {
  key: string; // `${symbol}|${venue ?? '*'}`, as the live book's
  stepMs: number;
  columns: { ts: number; bids: Level[]; asks: Level[] }[];
}

export interface Frame {
  type: 'frame';
  conn: Conn;
  denied: Denial[];
  tickers: TickerState[];
  book: { key: string; bids: Level[]; asks: Level[]; ts: number } | null;
  trades: TapeTrade[];
  candles: { key: string; reset: boolean; bars: Bar[] } | null;
  analytics: Record<string, { ts: number; values: Record<string, number>; history: number[] }>;
  bookHistory?: BookHistory | null;
}

export type ToWorker =
  // signedIn: whether a session may exist (false: connect anonymously, never ask for a ticket)
  | { type: 'start'; wsUrl: string; httpBase: string; symbols: string[]; flushMs?: number; signedIn?: boolean }
  | { type: 'select'; symbol: string; venue: string | null; interval: number }
  | { type: 'visibility'; hidden: boolean }
  | { type: 'reconnect'; signedIn?: boolean }; // signed in or out: reconnect now, with a fresh ticket (or none)

/** The value plotted for each analytics channel (arrays are flattened as `name.index`). */
export const ANALYTICS_PRIMARY: Record<string, string> = { ofi: 'ofi_normalised.0', vpin: 'vpin' };

export const INTERVALS: { label: string; seconds: number }[] = [
  { label: '1s', seconds: 1 },
  { label: '1m', seconds: 60 },
  { label: '5m', seconds: 300 },
  { label: '15m', seconds: 900 },
  { label: '1h', seconds: 3600 },
  { label: '4h', seconds: 14400 },
  { label: '1D', seconds: 86400 },
];
