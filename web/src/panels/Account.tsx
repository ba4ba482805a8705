import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, accountsApi, errorText, shortTime, type ApiKey, type CreatedKey, type Limits, type User } from '../lib/accounts';
import { hasSessionHint } from '../lib/startup';

// The account panel (issue 8): sign in / create an account / sign out, the tier with its limits
// and current usage, and API keys (create: the key is shown once; revoke: after a confirmation).
// The Account button appears only when the server's OpenAPI schema offers accounts.

type Operation = Record<string, unknown>;
type OpenApi = { paths?: Record<string, Record<string, Operation>> };

export interface AuthFeatures {
  login: boolean;
  signup: boolean;
  keys: boolean;
  limits: boolean;
}

export function detectAuth(api: OpenApi): AuthFeatures | null {
  const paths = api.paths ?? {};
  const has = (path: string, method: string) => !!paths[path]?.[method];
  const features = {
    login: has('/api/v1/auth/login', 'post'),
    signup: has('/api/v1/auth/signup', 'post'),
    keys: has('/api/v1/keys', 'get') && has('/api/v1/keys', 'post'),
    limits: has('/api/v1/limits', 'get'),
  };
  return features.login || features.keys || features.limits ? features : null;
}

export function useAuthFeatures(): AuthFeatures | null {
  const [features, setFeatures] = useState<AuthFeatures | null>(null);
  useEffect(() => {
    fetch('/openapi.json', { headers: { Accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : null))
      .then((api: OpenApi | null) => setFeatures(api ? detectAuth(api) : null))
      .catch(() => setFeatures(null));
  }, []);
  return features;
}

/** The signed-in user (null: anonymous; undefined: not known yet), read once when accounts exist. */
export function useSession(features: AuthFeatures | null): [User | null | undefined, (u: User | null) => void] {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  useEffect(() => {
    if (!features) return;
    if (!hasSessionHint()) {
      setUser(null); // no session cookie came with the page: asking would be a 401
      return;
    }
    let alive = true;
    accountsApi
      .whoami()
      .then((r) => alive && setUser(r.user))
      .catch((e: unknown) => {
        // a session that ended elsewhere: drop its cookie, so the next load does not ask again
        if (e instanceof ApiError && e.status === 401) void accountsApi.logout().catch(() => {});
        if (alive) setUser(null);
      });
    return () => {
      alive = false;
    };
  }, [features]);
  return [user, setUser];
}

const list = (xs: string[] | null) => (xs === null ? 'all' : xs.length ? xs.join(', ') : 'none');

function LimitsTable({ limits }: { limits: Limits }) {
  const l = limits.limits;
  const u = limits.usage;
  const rows: [string, string, string?][] = [
    ['Requests', `${u.requests_remaining} of ${l.requests} left per ${l.window_s} s`, 'usage-requests'],
    ['Resets in', `${u.reset_s.toFixed(1)} s`],
    ['Stream connections', `${u.ws_connections} of ${l.ws_connections} open`, 'usage-ws'],
    ['Subscriptions', `up to ${l.ws_subscriptions}`],
    ['Stream messages in', `${l.ws_inbound_per_s}/s`],
    ['Order book', l.book_interval_ms ? `snapshot every ${l.book_interval_ms / 1000} s` : 'every update'],
    ['History', `${l.history_days} day${l.history_days === 1 ? '' : 's'}`],
    ['API keys', `up to ${l.api_keys}`],
    ['Venues', list(l.venues)],
    ['Symbols', list(l.symbols)],
    ['Channels', list(l.channels)],
  ];
  return (
    <table className="kv" data-testid="limits">
      <tbody>
        {rows.map(([k, v, id]) => (
          <tr key={k}>
            <td>{k}</td>
            <td data-testid={id}>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function NewKey({ created, onDone }: { created: CreatedKey; onDone: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied('yes');
    } catch {
      setCopied('no');
    }
  };
  return (
    <div className="secret" data-testid="new-key" role="status">
      <div>
        <strong>New key “{created.name}”</strong> — shown only this once. Copy it now and keep it safe: it cannot be shown again.
      </div>
      <div className="secret-row">
        <input readOnly value={created.key} aria-label="New API key" data-testid="new-key-value" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
      </div>
      {copied === 'yes' && <div className="up">Copied to the clipboard.</div>}
      {copied === 'no' && <div className="muted-inline">Copying is blocked here: select the key and copy it by hand.</div>}
      <button type="button" onClick={onDone} data-testid="new-key-done">
        I have stored it
      </button>
    </div>
  );
}

function KeyRow({ k, onRevoke }: { k: ApiKey; onRevoke: (k: ApiKey) => Promise<void> }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  return (
    <li className={`key ${k.revoked_at ? 'revoked' : ''}`} data-testid="key-row" data-key-id={k.key_id}>
      <div className="key-head">
        <strong>{k.name}</strong> <code className="muted-inline">{k.key_id}</code>
        <span className={`badge ${k.revoked_at ? 'down' : 'live'}`} data-testid="key-state">
          {k.revoked_at ? 'revoked' : 'active'}
        </span>
      </div>
      <div className="key-meta muted-inline">
        created {shortTime(k.created_at)} · last used {k.last_used_at ? shortTime(k.last_used_at) : 'never'}
        {k.revoked_at ? ` · revoked ${shortTime(k.revoked_at)}` : ''}
      </div>
      {!k.revoked_at && !confirming && (
        <button type="button" onClick={() => setConfirming(true)} aria-label={`Revoke ${k.name}`}>
          Revoke
        </button>
      )}
      {!k.revoked_at && confirming && (
        <div className="confirm" role="group" aria-label="Confirm revoke">
          <span>Revoke “{k.name}”? Programs using it stop at once.</span>
          <button
            type="button"
            className="danger"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              await onRevoke(k);
              setBusy(false);
              setConfirming(false);
            }}
          >
            Yes, revoke
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      )}
    </li>
  );
}

function SignIn({ features, onUser }: { features: AuthFeatures; onUser: (u: User) => void }) {
  const [mode, setMode] = useState<'login' | 'signup'>('login');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const email = String(data.get('email') ?? '').trim();
    const password = String(data.get('password') ?? '');
    setError(null);
    setBusy(true);
    try {
      onUser(await (mode === 'login' ? accountsApi.login(email, password) : accountsApi.signup(email, password)));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const signup = mode === 'signup';
  return (
    <form className="form" onSubmit={(e) => void submit(e)} data-testid={signup ? 'signup-form' : 'login-form'}>
      <div className="mlabel">{signup ? 'Create an account (free tier)' : 'Sign in'}</div>
      {error && (
        <p className="down" role="alert">
          {error}
        </p>
      )}
      <label>
        Email
        <input name="email" type="email" required autoComplete="username" inputMode="email" />
      </label>
      <label>
        Password
        <input name="password" type="password" required minLength={signup ? 8 : 1} autoComplete={signup ? 'new-password' : 'current-password'} />
      </label>
      {signup && <span className="muted-inline">At least 8 characters.</span>}
      <button type="submit" className="primary" disabled={busy}>
        {signup ? 'Create account' : 'Sign in'}
      </button>
      {features.signup && (
        <button
          type="button"
          className="link"
          onClick={() => {
            setMode(signup ? 'login' : 'signup');
            setError(null);
          }}
        >
          {signup ? 'I have an account: sign in' : 'New here? Create an account'}
        </button>
      )}
    </form>
  );
}

/** Change the password: the server ends every other session; this one continues. */
function ChangePassword() {
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const data = new FormData(form);
    setMessage(null);
    setBusy(true);
    try {
      await accountsApi.changePassword(String(data.get('current') ?? ''), String(data.get('next') ?? ''));
      form.reset();
      setMessage({ ok: true, text: 'Password changed. Other sessions were signed out.' });
    } catch (err) {
      setMessage({ ok: false, text: errorText(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <details className="password">
      <summary className="mlabel">Change password</summary>
      <form className="form" onSubmit={(e) => void submit(e)} data-testid="password-form">
        {message && (
          <p className={message.ok ? 'muted' : 'down'} role={message.ok ? 'status' : 'alert'}>
            {message.text}
          </p>
        )}
        <label>
          Current password
          <input name="current" type="password" required autoComplete="current-password" />
        </label>
        <label>
          New password
          <input name="next" type="password" required minLength={8} autoComplete="new-password" />
        </label>
        <button type="submit" disabled={busy}>
          Change password
        </button>
      </form>
    </details>
  );
}

export function Account({
  features,
  user,
  onUser,
  onClose,
}: {
  features: AuthFeatures;
  user: User | null | undefined;
  onUser: (user: User | null) => void; // signed in or out: the page reconnects the stream
  onClose: () => void;
}) {
  const [limits, setLimits] = useState<Limits | null>(null);
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onUserRef = useRef(onUser);
  onUserRef.current = onUser;

  const refresh = useCallback(async () => {
    try {
      const [l, k] = await Promise.all([
        features.limits ? accountsApi.limits() : Promise.resolve(null),
        features.keys ? accountsApi.keys() : Promise.resolve({ data: [] as ApiKey[] }),
      ]);
      setLimits(l);
      setKeys(k.data);
    } catch (err) {
      setError(errorText(err));
      if ((err as { status?: number }).status === 401) onUserRef.current(null); // the session ended
    }
  }, [features]);

  useEffect(() => {
    setLimits(null);
    setKeys([]);
    setCreated(null);
    setError(null);
    if (user) void refresh();
  }, [user, refresh]);

  const createKey = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const name = String(new FormData(form).get('name') ?? '').trim() || 'default';
    setError(null);
    setBusy(true);
    try {
      setCreated(await accountsApi.createKey(name));
      form.reset();
      await refresh();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (k: ApiKey) => {
    setError(null);
    try {
      await accountsApi.revokeKey(k.key_id);
    } catch (err) {
      setError(errorText(err));
    }
    await refresh();
  };

  const signOut = async () => {
    setError(null);
    try {
      await accountsApi.logout();
    } catch (err) {
      setError(errorText(err));
      return;
    }
    onUser(null);
  };

  const active = keys.filter((k) => !k.revoked_at).length;
  return (
    <div className="account panel" role="dialog" aria-label="Account" data-testid="account">
      <div className="panel-head">
        <span>Account</span>
        {user && (
          <span className="badge live" data-testid="tier">
            tier {limits?.tier ?? user.tier}
          </span>
        )}
        <button onClick={onClose} aria-label="Close account" className="close">
          ✕
        </button>
      </div>
      {user === undefined && <p className="muted">Checking your session…</p>}
      {user === null && (features.login ? <SignIn features={features} onUser={onUser} /> : <p className="muted">Sign-in is not offered here.</p>)}
      {user && (
        <div className="account-body">
          {error && (
            <p className="down" role="alert">
              {error}
            </p>
          )}
          <div className="who">
            Signed in as <strong data-testid="account-email">{user.email}</strong>
            <button type="button" onClick={() => void signOut()} data-testid="sign-out">
              Sign out
            </button>
          </div>
          <ChangePassword />
          {limits && (
            <section>
              <div className="mlabel section-head">
                Limits and usage
                <button type="button" onClick={() => void refresh()} aria-label="Refresh limits">
                  ↻
                </button>
              </div>
              <LimitsTable limits={limits} />
            </section>
          )}
          {features.keys && (
            <section className="keys">
              <div className="mlabel section-head">
                API keys
                {limits && (
                  <span className="muted-inline">
                    {active} of {limits.limits.api_keys} active
                  </span>
                )}
              </div>
              {created && <NewKey created={created} onDone={() => setCreated(null)} />}
              {keys.length === 0 && <p className="muted">No keys yet. Programs use a key in the X-API-Key header.</p>}
              <ul className="key-list">
                {keys.map((k) => (
                  <KeyRow key={k.key_id} k={k} onRevoke={revoke} />
                ))}
              </ul>
              <form className="form inline" onSubmit={(e) => void createKey(e)}>
                <label>
                  Key name
                  <input name="name" maxLength={64} placeholder="e.g. trading-bot" />
                </label>
                <button type="submit" disabled={busy}>
                  Create key
                </button>
              </form>
            </section>
          )}
        </div>
      )}
    </div>
  );
}
