import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { useState } from 'react';
import { Account, detectAuth, useSession, type AuthFeatures } from './Account';
import { hasSessionHint, setSessionHint } from '../lib/startup';
import { Status } from './Status';
import { TierNotice, denialFor } from './TierNotice';
import type { User } from '../lib/accounts';

const FEATURES: AuthFeatures = { login: true, signup: true, keys: true, limits: true };
const LIMITS = {
  tier: 'free',
  server_time: 0,
  limits: {
    requests: 60,
    window_s: 60,
    ws_connections: 1,
    ws_subscriptions: 20,
    ws_inbound_per_s: 5,
    book_interval_ms: 1000,
    history_days: 1,
    api_keys: 2,
    venues: null,
    symbols: ['BTC/USD', 'ETH/USD'],
    channels: ['trades', 'ticker', 'book', 'candles'],
  },
  usage: { requests_remaining: 57, reset_s: 3.5, ws_connections: 1 },
  weights: {},
};
const USER: User = { id: 7, email: 'a@b.co', tier: 'free', is_admin: false, created_at: '2026-11-25T19:00:00Z' };

type Handler = (method: string, body: Record<string, string> | null) => Response;
const problem = (status: number, code: string, detail: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: `/problems/${code}`, title: code, status, detail, code }), {
    status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
  });
const ok = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

/** A fake accounts server: a session flag, keys, and a log of calls. */
function fakeServer() {
  const state = {
    session: false,
    keys: [] as { key_id: string; name: string; created_at: string; last_used_at: string | null; revoked_at: string | null }[],
    calls: [] as string[],
    bodies: [] as unknown[],
  };
  const routes: Record<string, Handler> = {
    '/api/v1/auth/login': (_m, b) => {
      if (b?.password !== 'correct horse') return problem(401, 'login-failed', 'wrong email or password');
      state.session = true;
      return ok(USER);
    },
    '/api/v1/auth/signup': (_m, b) => {
      if ((b?.password ?? '').length < 8) return problem(422, 'weak-password', 'a password needs at least 8 characters');
      if (b?.email === 'taken@b.co') return problem(409, 'email-taken', 'that email is already registered');
      state.session = true;
      return ok({ ...USER, email: b!.email }, 201);
    },
    '/api/v1/auth/logout': () => {
      state.session = false;
      return new Response(null, { status: 204 });
    },
    '/api/v1/limits': () => ok(LIMITS),
    '/api/v1/account': () => ok({ user: USER, authenticated_by: 'session', key_id: null }),
    '/api/v1/account/password': (_m, b) => {
      if (b?.current_password !== 'correct horse') return problem(403, 'password-wrong', 'the current password is not right');
      return new Response(null, { status: 204 });
    },
    '/api/v1/keys': (m, b) => {
      if (m === 'GET') return ok({ data: state.keys });
      if (state.keys.filter((k) => !k.revoked_at).length >= 2) return problem(403, 'key-limit', 'the free tier allows 2 keys');
      const key = { key_id: `k${state.keys.length + 1}`, name: b!.name, created_at: '2026-11-25T19:10:00Z', last_used_at: null, revoked_at: null };
      state.keys.push(key);
      return ok({ ...key, key: `qs_secret_${key.key_id}` }, 201);
    },
  };
  vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    state.calls.push(`${method} ${url}`);
    const body = init?.body ? (JSON.parse(String(init.body)) as Record<string, string>) : null;
    state.bodies.push(body);
    expect(init?.credentials).toBe('same-origin');
    const open = ['/api/v1/auth/login', '/api/v1/auth/signup', '/api/v1/auth/logout'];
    if (!open.includes(url) && !state.session) return problem(401, 'credentials-required', 'sign in');
    const revoke = /^\/api\/v1\/keys\/(\w+)$/.exec(url);
    if (revoke && method === 'DELETE') {
      const k = state.keys.find((x) => x.key_id === revoke[1]);
      if (!k) return problem(404, 'not-found', 'no key');
      k.revoked_at = '2026-11-25T19:20:00Z';
      return new Response(null, { status: 204 });
    }
    return routes[url]?.(method, body) ?? problem(404, 'not-found', url);
  });
  return state;
}

/** The panel with the session state kept the way App keeps it; `changes` counts reconnects. */
function Harness({ initial, changes }: { initial: User | null; changes: (u: User | null) => void }) {
  const [user, setUser] = useState<User | null>(initial);
  return (
    <Account
      features={FEATURES}
      user={user}
      onUser={(u) => {
        setUser(u);
        changes(u);
      }}
      onClose={() => {}}
    />
  );
}

const type = (label: string, value: string) => fireEvent.change(screen.getByLabelText(label), { target: { value } });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  setSessionHint(false);
});

describe('detectAuth', () => {
  it('finds the accounts API in the OpenAPI schema, or nothing', () => {
    expect(detectAuth({ paths: { '/health': { get: {} } } })).toBeNull();
    expect(
      detectAuth({
        paths: {
          '/api/v1/auth/login': { post: {} },
          '/api/v1/auth/signup': { post: {} },
          '/api/v1/keys': { get: {}, post: {} },
          '/api/v1/limits': { get: {} },
        },
      }),
    ).toEqual(FEATURES);
  });
});

/** What App does with the session: read once, when the server offers accounts. */
function SessionProbe() {
  const [user] = useSession(FEATURES);
  return <p data-testid="who">{user === undefined ? 'asking' : user ? user.email : 'anonymous'}</p>;
}

describe('useSession', () => {
  it('an anonymous visitor (no session hint) is not asked who they are: no 401', async () => {
    const server = fakeServer();
    render(<SessionProbe />);
    await waitFor(() => expect(screen.getByTestId('who')).toHaveTextContent('anonymous'));
    expect(server.calls).toEqual([]);
  });

  it('with the hint it asks; a session that ended elsewhere drops its stale cookie', async () => {
    const server = fakeServer();
    setSessionHint(true);
    server.session = true;
    const { unmount } = render(<SessionProbe />);
    await waitFor(() => expect(screen.getByTestId('who')).toHaveTextContent(USER.email));
    unmount();
    server.calls.length = 0;
    server.session = false; // ended elsewhere
    render(<SessionProbe />);
    await waitFor(() => expect(server.calls).toEqual(['GET /api/v1/account', 'POST /api/v1/auth/logout']));
    expect(screen.getByTestId('who')).toHaveTextContent('anonymous');
    expect(hasSessionHint()).toBe(false);
  });
});

describe('Account', () => {
  it('signs in (after a wrong password), shows tier, limits and usage, and signs out', async () => {
    const server = fakeServer();
    const changes = vi.fn();
    render(<Harness initial={null} changes={changes} />);
    expect(screen.getByLabelText('Password')).toHaveAttribute('type', 'password');
    type('Email', 'a@b.co');
    type('Password', 'nope');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('wrong email or password');
    expect(changes).not.toHaveBeenCalled();
    type('Password', 'correct horse');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByTestId('tier')).toHaveTextContent('tier free');
    expect(changes).toHaveBeenCalledWith(USER); // the page reconnects the stream
    expect(server.bodies).toContainEqual({ email: 'a@b.co', password: 'correct horse' });
    expect(await screen.findByTestId('usage-requests')).toHaveTextContent('57 of 60 left per 60 s');
    expect(screen.getByTestId('usage-ws')).toHaveTextContent('1 of 1 open');
    expect(screen.getByTestId('limits')).toHaveTextContent('BTC/USD, ETH/USD');
    expect(screen.getByTestId('limits')).toHaveTextContent('snapshot every 1 s');
    expect(screen.getByTestId('account-email')).toHaveTextContent('a@b.co');
    fireEvent.click(screen.getByTestId('sign-out'));
    await screen.findByRole('button', { name: 'Sign in' });
    expect(changes).toHaveBeenLastCalledWith(null);
    expect(server.calls).toContain('POST /api/v1/auth/logout');
    expect(server.session).toBe(false);
  });

  it('changes the password, and says why when the server refuses', async () => {
    const server = fakeServer();
    server.session = true;
    render(<Harness initial={USER} changes={vi.fn()} />);
    fireEvent.click(screen.getByText('Change password', { selector: 'summary' }));
    const form = screen.getByTestId('password-form');
    type('Current password', 'wrong one');
    type('New password', 'a brand new password');
    fireEvent.click(within(form).getByRole('button', { name: 'Change password' }));
    expect(await within(form).findByRole('alert')).toHaveTextContent('the current password is not right');
    type('Current password', 'correct horse');
    type('New password', 'a brand new password');
    fireEvent.click(within(form).getByRole('button', { name: 'Change password' }));
    expect(await within(form).findByRole('status')).toHaveTextContent('Other sessions were signed out');
    expect(server.bodies).toContainEqual({ current_password: 'correct horse', new_password: 'a brand new password' });
  });

  it('creates an account, and shows the server\'s reasons when it cannot', async () => {
    fakeServer();
    const changes = vi.fn();
    render(<Harness initial={null} changes={changes} />);
    fireEvent.click(screen.getByRole('button', { name: /Create an account/ }));
    expect(screen.getByLabelText('Password')).toHaveAttribute('autocomplete', 'new-password');
    type('Email', 'taken@b.co');
    type('Password', 'long enough');
    fireEvent.click(screen.getByRole('button', { name: 'Create account' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('already registered');
    type('Email', 'new@b.co');
    fireEvent.click(screen.getByRole('button', { name: 'Create account' }));
    expect(await screen.findByTestId('account-email')).toHaveTextContent('new@b.co');
    expect(changes).toHaveBeenCalledTimes(1);
  });

  it('creates a key, shows it once with a copy button, and revokes a key after confirmation', async () => {
    const server = fakeServer();
    server.session = true;
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    render(<Harness initial={USER} changes={() => {}} />);
    await screen.findByText(/No keys yet/);
    type('Key name', 'bot');
    fireEvent.click(screen.getByRole('button', { name: 'Create key' }));
    const shown = await screen.findByTestId('new-key');
    expect(shown).toHaveTextContent('shown only this once');
    expect(screen.getByTestId('new-key-value')).toHaveValue('qs_secret_k1');
    fireEvent.click(within(shown).getByRole('button', { name: 'Copy' }));
    await screen.findByText(/Copied/);
    expect(writeText).toHaveBeenCalledWith('qs_secret_k1');
    const row = await screen.findByTestId('key-row');
    expect(row).toHaveTextContent('bot');
    expect(row).toHaveTextContent('last used never');
    fireEvent.click(screen.getByTestId('new-key-done'));
    expect(screen.queryByTestId('new-key')).toBeNull(); // gone for good
    expect(document.body.textContent).not.toContain('qs_secret_k1');
    // revoke: nothing happens until confirmed; cancel keeps the key
    fireEvent.click(within(row).getByRole('button', { name: 'Revoke bot' }));
    fireEvent.click(within(row).getByRole('button', { name: 'Cancel' }));
    expect(server.calls.some((c) => c.startsWith('DELETE'))).toBe(false);
    fireEvent.click(within(row).getByRole('button', { name: 'Revoke bot' }));
    expect(within(row).getByRole('group')).toHaveTextContent('Programs using it stop at once');
    fireEvent.click(within(row).getByRole('button', { name: 'Yes, revoke' }));
    await waitFor(() => expect(screen.getByTestId('key-state')).toHaveTextContent('revoked'));
    expect(server.calls).toContain('DELETE /api/v1/keys/k1');
    expect(screen.getByTestId('key-row')).toHaveTextContent('revoked 2026-11-25 19:20');
  });

  it('shows problem details, with Retry-After on 429, and drops to sign-in when the session ends', async () => {
    const server = fakeServer();
    server.session = true;
    server.keys.push({ key_id: 'k1', name: 'a', created_at: '2026-11-25T19:10:00Z', last_used_at: '2026-11-25T19:11:00Z', revoked_at: null });
    server.keys.push({ key_id: 'k2', name: 'b', created_at: '2026-11-25T19:10:00Z', last_used_at: null, revoked_at: null });
    const changes = vi.fn();
    render(<Harness initial={USER} changes={changes} />);
    expect(await screen.findAllByTestId('key-row')).toHaveLength(2);
    expect(screen.getAllByTestId('key-row')[0]).toHaveTextContent('last used 2026-11-25 19:11');
    fireEvent.click(screen.getByRole('button', { name: 'Create key' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('the free tier allows 2 keys');
    vi.stubGlobal('fetch', async () => problem(429, 'rate-limited', 'over the free limit', { 'Retry-After': '12' }));
    fireEvent.click(screen.getByRole('button', { name: 'Refresh limits' }));
    await waitFor(() => expect(screen.getByRole('alert')).toHaveTextContent('over the free limit (try again in 12 s)'));
    vi.stubGlobal('fetch', async () => problem(401, 'credentials-required', 'sign in'));
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Refresh limits' })));
    await screen.findByRole('button', { name: 'Sign in' });
    expect(changes).toHaveBeenCalledWith(null);
  });
});

describe('stream and tier notices', () => {
  it('the status badge says why the stream is not open', () => {
    const { rerender } = render(
      <Status feeds={[]} conn="closed" wsAgeS={null} rate={0} problem={{ code: 'too-many-connections', message: 'the free tier allows 1', closeCode: 4429 }} />,
    );
    expect(screen.getByTestId('ws-status')).toHaveTextContent('stream closed · connection limit reached');
    rerender(<Status feeds={[]} conn="connecting" wsAgeS={null} rate={0} problem={{ code: 'credentials-required', message: 'x' }} />);
    expect(screen.getByTestId('ws-problem')).toHaveTextContent('sign in required');
    rerender(<Status feeds={[]} conn="open" wsAgeS={0} rate={12} identity="user" problem={null} />);
    expect(screen.getByTestId('ws-status')).toHaveTextContent('stream open · 12/s');
    expect(screen.getByTestId('ws-status')).toHaveAttribute('data-identity', 'user');
  });

  it('a panel outside the tier gets a clear notice', () => {
    const denied = [{ channel: '*', symbol: 'SOL/USD', message: 'the free tier does not include SOL/USD' }];
    expect(denialFor(denied, 'BTC/USD', ['book'])).toBeNull();
    render(<TierNotice denial={denialFor(denied, 'SOL/USD', ['book'])} what="The order book" symbol="SOL/USD" />);
    expect(screen.getByTestId('tier-notice')).toHaveTextContent('The order book for SOL/USD is not in your tier.');
    expect(screen.getByTestId('tier-notice')).toHaveTextContent('the free tier does not include SOL/USD');
  });
});
