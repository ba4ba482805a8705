import { useEffect, useState, type FormEvent } from 'react';

// Account UI, shown only when the server's OpenAPI schema offers accounts (issue 8). Forms are
// generated from the request schemas, so they follow the server rather than a guess.

type Schema = { type?: string; properties?: Record<string, Schema>; required?: string[]; $ref?: string; format?: string };
type Operation = { requestBody?: { content?: Record<string, { schema?: Schema }> } };
type OpenApi = { paths?: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema> } };

export interface AuthFeatures {
  limits: string | null;
  login: { path: string; fields: string[]; form: boolean } | null;
  logout: string | null;
  keys: { path: string; fields: string[] } | null;
  keyItem: string | null; // e.g. /api/v1/keys/{key_id}
}

function resolve(api: OpenApi, schema: Schema | undefined): Schema | undefined {
  if (schema?.$ref) return api.components?.schemas?.[schema.$ref.split('/').pop() ?? ''];
  return schema;
}

function bodyFields(api: OpenApi, op: Operation | undefined): { fields: string[]; form: boolean } {
  const content = op?.requestBody?.content ?? {};
  const form = !content['application/json'] && !!(content['application/x-www-form-urlencoded'] || content['multipart/form-data']);
  const media = content['application/json'] ?? content['application/x-www-form-urlencoded'] ?? content['multipart/form-data'];
  const schema = resolve(api, media?.schema);
  return { fields: Object.keys(schema?.properties ?? {}), form };
}

export function detectAuth(api: OpenApi): AuthFeatures | null {
  const paths = api.paths ?? {};
  const find = (re: RegExp, method: string) => Object.keys(paths).find((p) => re.test(p) && paths[p][method]);
  const limits = find(/\/limits$/, 'get') ?? null;
  const loginPath = find(/\/(login|session|sessions)$/, 'post');
  const keysPath = find(/\/keys$/, 'post');
  if (!limits && !loginPath && !keysPath) return null;
  return {
    limits,
    login: loginPath ? { path: loginPath, ...bodyFields(api, paths[loginPath].post) } : null,
    logout: find(/\/logout$/, 'post') ?? null,
    keys: keysPath ? { path: keysPath, fields: bodyFields(api, paths[keysPath].post).fields } : null,
    keyItem: find(/\/keys\/\{[^}]+\}$/, 'delete') ?? null,
  };
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

async function call(path: string, method = 'GET', body?: Record<string, string>, form = false) {
  const init: RequestInit = { method, credentials: 'include', headers: { Accept: 'application/json' } };
  if (body) {
    if (form) init.body = new URLSearchParams(body);
    else {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: r.status, ok: r.ok, json };
}

const problemText = (json: unknown, status: number) =>
  (json && typeof json === 'object' && ((json as Record<string, string>).detail || (json as Record<string, string>).title)) || `HTTP ${status}`;

type KeyRow = Record<string, unknown>;

export function Account({ features, onClose }: { features: AuthFeatures; onClose: () => void }) {
  const [limits, setLimits] = useState<Record<string, unknown> | null>(null);
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  const [keys, setKeys] = useState<KeyRow[]>([]);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const refresh = async () => {
    if (features.limits) {
      const r = await call(features.limits);
      setSignedIn(r.ok);
      setLimits(r.ok ? (r.json as Record<string, unknown>) : null);
    }
    if (features.keys) {
      const r = await call(features.keys.path);
      if (r.ok) {
        const body = r.json as { data?: KeyRow[] } | KeyRow[];
        setKeys(Array.isArray(body) ? body : (body.data ?? []));
        setSignedIn(true);
      } else if (!features.limits) setSignedIn(false);
    }
  };
  useEffect(() => {
    void refresh();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [features]);

  const submit = (path: string, fields: string[], form: boolean, after: (json: unknown) => void) => async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const body = Object.fromEntries(fields.map((f) => [f, String(data.get(f) ?? '')]));
    setError(null);
    const r = await call(path, 'POST', body, form);
    if (!r.ok) setError(String(problemText(r.json, r.status)));
    else after(r.json);
  };

  const tier = limits && (limits.tier ?? (limits as Record<string, Record<string, unknown>>).account?.tier);
  return (
    <div className="account panel" role="dialog" aria-label="Account" data-testid="account">
      <div className="panel-head">
        <span>Account</span>
        {tier !== undefined && tier !== null && <span className="badge live" data-testid="tier">tier {String(tier)}</span>}
        <button onClick={onClose} aria-label="Close account" style={{ marginLeft: 'auto' }}>
          ✕
        </button>
      </div>
      {error && <p className="down" role="alert">{error}</p>}
      {signedIn === false && features.login && (
        <form onSubmit={submit(features.login.path, features.login.fields, features.login.form, () => void refresh())} className="form">
          {features.login.fields.map((f) => (
            <label key={f}>
              {f}
              <input name={f} type={/pass|secret/i.test(f) ? 'password' : 'text'} autoComplete={/pass/i.test(f) ? 'current-password' : 'username'} />
            </label>
          ))}
          <button type="submit">Sign in</button>
        </form>
      )}
      {signedIn && limits && (
        <table className="kv">
          <tbody>
            {Object.entries(limits)
              .filter(([, v]) => typeof v !== 'object' || v === null)
              .map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td className="num">{String(v)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
      {signedIn && features.keys && (
        <div className="keys">
          <div className="mlabel">API keys</div>
          {secret && (
            <p className="secret" data-testid="new-secret">
              New key (shown once): <code>{secret}</code>
            </p>
          )}
          <ul>
            {keys.map((k, i) => {
              const id = String(k.id ?? k.key_id ?? k.prefix ?? i);
              return (
                <li key={id}>
                  {String(k.name ?? id)} {k.last_used_at ? `· used ${String(k.last_used_at)}` : ''}
                  {features.keyItem && (
                    <button
                      onClick={async () => {
                        const r = await call(features.keyItem!.replace(/\{[^}]+\}/, encodeURIComponent(id)), 'DELETE');
                        if (!r.ok) setError(String(problemText(r.json, r.status)));
                        void refresh();
                      }}
                    >
                      revoke
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
          <form
            className="form"
            onSubmit={submit(features.keys.path, features.keys.fields, false, (json) => {
              const j = (json ?? {}) as Record<string, unknown>;
              setSecret(String(j.key ?? j.secret ?? j.api_key ?? ''));
              void refresh();
            })}
          >
            {features.keys.fields.map((f) => (
              <label key={f}>
                {f} <input name={f} />
              </label>
            ))}
            <button type="submit">Create key</button>
          </form>
        </div>
      )}
      {signedIn && features.logout && (
        <button
          onClick={async () => {
            await call(features.logout!, 'POST');
            setSignedIn(false);
            setLimits(null);
            setKeys([]);
          }}
        >
          Sign out
        </button>
      )}
    </div>
  );
}
