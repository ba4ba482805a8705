// The feed engine's ports and the server's message shape: what FeedEngine is driven through
// (a socket factory, fetch, a ticket call, a clock, `post` to the UI), injected by the worker in
// the browser and by fakes in tests, and the numbers of a message as the panels read them.
import type { Frame } from '../lib/types';

export interface SocketLike {
  send(text: string): void;
  close(): void;
  onopen: (() => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  onerror: (() => void) | null;
}

export interface HttpResponse {
  ok: boolean;
  status?: number;
  json(): Promise<unknown>;
}

export interface FeedDeps {
  post: (frame: Frame) => void;
  connect: (url: string) => SocketLike;
  fetch: (url: string) => Promise<HttpResponse>;
  /** POST /api/v1/ws-ticket with the page's session cookie. Without it: connect without tickets. */
  ticket?: (url: string) => Promise<HttpResponse>;
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
}

export interface Msg {
  type: string;
  id?: number;
  code?: string;
  status?: number;
  message?: string;
  channel?: string;
  venue?: string;
  symbol?: string;
  seq?: number;
  timestamp?: number;
  channels?: string[];
  venues?: string[];
  data?: Record<string, unknown>;
}

/** Numbers (and numeric strings) of a message; arrays become `name.0`, `name.1`, ... */
export function numericValues(data: Record<string, unknown>): Record<string, number> {
  const values: Record<string, number> = {};
  const put = (k: string, v: unknown) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
    if (Number.isFinite(n)) values[k] = n;
  };
  for (const [k, v] of Object.entries(data)) {
    if (Array.isArray(v)) v.slice(0, 10).forEach((x, i) => put(`${k}.${i}`, x));
    else put(k, v);
  }
  return values;
}
