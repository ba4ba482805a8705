// The accounts API (src/quantsaas/api/accounts_routes.py), for the dashboard: the session is an
// HttpOnly cookie the browser keeps, so every call is same-origin with credentials.

import { setSessionHint } from './startup';

export interface User {
  id: number;
  email: string;
  tier: string;
  is_admin: boolean;
  created_at: string;
}

export interface ApiKey {
  key_id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface CreatedKey extends ApiKey {
  key: string; // shown this once
}

export interface Limits {
  tier: string;
  server_time: number;
  limits: {
    requests: number;
    window_s: number;
    ws_connections: number;
    ws_subscriptions: number;
    ws_inbound_per_s: number;
    book_interval_ms: number;
    history_days: number;
    api_keys: number;
    venues: string[] | null;
    symbols: string[] | null;
    channels: string[] | null;
  };
  usage: { requests_remaining: number; reset_s: number; ws_connections: number };
  weights: Record<string, number>;
}

/** An RFC 9457 problem answer (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

async function call<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json, application/problem+json' };
  const init: RequestInit = { method, credentials: 'same-origin', cache: 'no-store', headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r: Response;
  try {
    r = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'unreachable', 'the server cannot be reached');
  }
  const text = r.status === 204 ? '' : await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!r.ok) {
    const p = (json ?? {}) as { code?: string; detail?: string; title?: string };
    const retry = Number(r.headers.get('Retry-After'));
    throw new ApiError(r.status, p.code ?? `http-${r.status}`, p.detail || p.title || `HTTP ${r.status}`, Number.isFinite(retry) && retry > 0 ? retry : null);
  }
  return json as T;
}

function signedIn(user: User): User {
  setSessionHint(true);
  return user;
}

export const accountsApi = {
  whoami: () => call<{ user: User; authenticated_by: string; key_id: string | null }>('/api/v1/account'),
  signup: (email: string, password: string) => call<User>('/api/v1/auth/signup', 'POST', { email, password }).then(signedIn),
  login: (email: string, password: string) => call<User>('/api/v1/auth/login', 'POST', { email, password }).then(signedIn),
  logout: () => call<null>('/api/v1/auth/logout', 'POST').finally(() => setSessionHint(false)),
  limits: () => call<Limits>('/api/v1/limits'),
  keys: () => call<{ data: ApiKey[] }>('/api/v1/keys'),
  createKey: (name: string) => call<CreatedKey>('/api/v1/keys', 'POST', { name }),
  revokeKey: (keyId: string) => call<null>(`/api/v1/keys/${encodeURIComponent(keyId)}`, 'DELETE'),
  changePassword: (current: string, next: string) =>
    call<null>('/api/v1/account/password', 'POST', { current_password: current, new_password: next }),
};

/** What to tell the user about a failed call. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429) return `${err.message}${err.retryAfterS ? ` (try again in ${Math.ceil(err.retryAfterS)} s)` : ''}`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** `2026-11-25T19:36:26.327525Z` -> `2026-11-25 19:36` (UTC), or a dash. */
export function shortTime(iso: string | null): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace('T', ' ');
}
