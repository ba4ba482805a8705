import { describe, expect, it, vi, afterEach } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { Account, detectAuth } from './Account';

const API = {
  paths: {
    '/api/v1/market_data': { get: {} },
    '/api/v1/limits': { get: {} },
    '/api/v1/auth/login': {
      post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Login' } } } } },
    },
    '/api/v1/auth/logout': { post: {} },
    '/api/v1/keys': {
      get: {},
      post: { requestBody: { content: { 'application/json': { schema: { properties: { name: { type: 'string' } } } } } } },
    },
    '/api/v1/keys/{key_id}': { delete: {} },
  },
  components: { schemas: { Login: { properties: { email: { type: 'string' }, password: { type: 'string' } } } } },
};

afterEach(() => vi.unstubAllGlobals());

describe('detectAuth', () => {
  it('finds accounts in the OpenAPI schema, or nothing', () => {
    expect(detectAuth({ paths: { '/health': { get: {} } } })).toBeNull();
    expect(detectAuth(API)).toEqual({
      limits: '/api/v1/limits',
      login: { path: '/api/v1/auth/login', fields: ['email', 'password'], form: false },
      logout: '/api/v1/auth/logout',
      keys: { path: '/api/v1/keys', fields: ['name'] },
      keyItem: '/api/v1/keys/{key_id}',
    });
  });
});

describe('Account', () => {
  it('signs in, shows the tier, creates a key (secret once) and revokes it', async () => {
    let session = false;
    let keys = [{ id: 'k1', name: 'old' }];
    const calls: string[] = [];
    vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
      const method = init?.method ?? 'GET';
      calls.push(`${method} ${url}`);
      const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
      if (url === '/api/v1/auth/login') {
        const body = JSON.parse(String(init?.body));
        session = body.email === 'a@b.c' && body.password === 'pw';
        return session ? json(200, { ok: true }) : json(401, { title: 'Unauthorized', detail: 'bad credentials' });
      }
      if (!session) return json(401, { title: 'Unauthorized' });
      if (url === '/api/v1/limits') return json(200, { tier: 'pro', requests_per_minute: 600, usage: { minute: 3 } });
      if (url === '/api/v1/keys' && method === 'GET') return json(200, { data: keys });
      if (url === '/api/v1/keys' && method === 'POST') {
        keys = [...keys, { id: 'k2', name: JSON.parse(String(init?.body)).name }];
        return json(201, { id: 'k2', key: 'qs_secret_123' });
      }
      if (url === '/api/v1/keys/k1' && method === 'DELETE') {
        keys = keys.filter((k) => k.id !== 'k1');
        return new Response(null, { status: 204 });
      }
      return json(404, {});
    });
    const features = detectAuth(API)!;
    render(<Account features={features} onClose={() => {}} />);
    await screen.findByText('Sign in');
    expect(screen.getByLabelText('password').getAttribute('type')).toBe('password');
    expect(screen.getByLabelText('email').getAttribute('type')).toBe('text');
    fireEvent.change(screen.getByLabelText('email'), { target: { value: 'a@b.c' } });
    fireEvent.change(screen.getByLabelText('password'), { target: { value: 'nope' } });
    fireEvent.click(screen.getByText('Sign in'));
    expect(await screen.findByRole('alert')).toHaveTextContent('bad credentials');
    fireEvent.change(screen.getByLabelText('password'), { target: { value: 'pw' } });
    fireEvent.click(screen.getByText('Sign in'));
    expect(await screen.findByTestId('tier')).toHaveTextContent('tier pro');
    expect(screen.getByText('600')).toBeInTheDocument();
    expect(screen.queryByText('Sign in')).toBeNull();
    expect(screen.getByText(/old/)).toBeInTheDocument();
    fireEvent.change(screen.getByLabelText('name'), { target: { value: 'bot' } });
    fireEvent.click(screen.getByText('Create key'));
    expect(await screen.findByTestId('new-secret')).toHaveTextContent('qs_secret_123');
    expect(await screen.findByText(/bot/)).toBeInTheDocument();
    fireEvent.click(screen.getAllByText('revoke')[0]);
    await waitFor(() => expect(screen.queryByText(/old/)).toBeNull());
    expect(calls).toContain('DELETE /api/v1/keys/k1');
  });
});
