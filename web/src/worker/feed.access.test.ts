import { describe, expect, it } from 'vitest';
import { FeedEngine } from './feed';
import type { HttpResponse } from './ports';
import { FakeSocket } from './fakes';
import { Entitlements } from './subs';
import { Outbox } from './outbox';
import { closeProblem, problemLabel, retryDelay } from '../lib/access';

const flushAsync = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};
const json = (status: number, body: unknown): HttpResponse => ({ ok: status < 300, status, json: async () => body });

/** An engine whose ticket endpoint answers from `tickets` (a status, or a ticket string). */
function setup(tickets: (number | string | Error)[], rest: Record<string, HttpResponse> = {}) {
  const sockets: FakeSocket[] = [];
  const timers: [() => void, number][] = [];
  const ticketCalls: string[] = [];
  let now = 1_700_000_000_000;
  const engine = new FeedEngine({
    post: () => {},
    connect: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    fetch: async (url) => rest[Object.keys(rest).find((k) => url.includes(k)) ?? ''] ?? json(404, {}),
    ticket: async (url) => {
      ticketCalls.push(url);
      const next = tickets.length > 1 ? tickets.shift()! : tickets[0];
      if (next instanceof Error) throw next;
      return typeof next === 'string' ? json(200, { ticket: next, expires_in_s: 30 }) : json(next, { code: 'x', detail: `status ${next}` });
    },
    now: () => now,
    setTimeout: (fn, ms) => timers.push([fn, ms]),
  });
  engine.handle({ type: 'start', wsUrl: 'ws://x/ws', httpBase: 'http://x', symbols: ['ADA/USD', 'BTC/USD', 'ETH/USD', 'SOL/USD'] });
  const runTimer = () => timers.shift()![0]();
  /** A second later, with every due timer run (the outbox paces requests at 4/s). */
  const nextSecond = () => {
    now += 1001;
    while (timers.length) runTimer();
  };
  return { engine, sockets, timers, ticketCalls, runTimer, nextSecond };
}

const INFO = { type: 'info', channels: ['book', 'ticker', 'trades', 'ofi'], venues: ['sim'], symbols: ['ADA/USD', 'BTC/USD', 'ETH/USD', 'SOL/USD'] };

describe('FeedEngine access', () => {
  it('fetches a fresh ticket before every connect and puts it in the URL', async () => {
    const { engine, sockets, ticketCalls, runTimer, timers } = setup(['t-1', 't-2']);
    expect(sockets).toHaveLength(0); // not before the ticket came
    await flushAsync();
    expect(ticketCalls).toEqual(['http://x/api/v1/ws-ticket']);
    expect(sockets[0].url).toBe('ws://x/ws?ticket=t-1');
    sockets[0].onopen!();
    sockets[0].push(INFO);
    expect(engine.flush()!.conn).toMatchObject({ state: 'open', identity: 'user', problem: null });
    sockets[0].close(1006);
    expect(engine.flush()!.conn.state).toBe('closed');
    expect(timers).toHaveLength(1);
    runTimer();
    await flushAsync();
    expect(ticketCalls).toHaveLength(2);
    expect(sockets[1].url).toBe('ws://x/ws?ticket=t-2'); // never the used one again
  });

  it('without a session an anonymous visitor is never asked for a ticket (no 401s)', async () => {
    const { engine, sockets, ticketCalls } = setup(['t-1']);
    await flushAsync();
    expect(ticketCalls).toHaveLength(1); // the setup's start assumed a session may exist
    engine.handle({ type: 'start', wsUrl: 'ws://x/ws', httpBase: 'http://x', symbols: ['BTC/USD'], signedIn: false });
    await flushAsync();
    expect(ticketCalls).toHaveLength(1);
    expect(sockets[1].url).toBe('ws://x/ws');
    sockets[1].onopen!();
    sockets[1].push(INFO);
    expect(engine.flush()!.conn).toMatchObject({ state: 'open', identity: 'anonymous' });
    engine.handle({ type: 'reconnect', signedIn: true }); // signed in: a ticket from now on
    await flushAsync();
    expect(ticketCalls).toHaveLength(2);
    expect(sockets[2].url).toBe('ws://x/ws?ticket=t-1');
    engine.handle({ type: 'reconnect', signedIn: false }); // signed out: none again
    await flushAsync();
    expect(ticketCalls).toHaveLength(2);
    expect(sockets[3].url).toBe('ws://x/ws');
  });

  it('connects without a ticket when not signed in (401)', async () => {
    const { engine, sockets } = setup([401]);
    await flushAsync();
    expect(sockets[0].url).toBe('ws://x/ws');
    sockets[0].onopen!();
    sockets[0].push(INFO);
    expect(engine.flush()!.conn).toMatchObject({ state: 'open', identity: 'anonymous' });
  });

  it('waits and retries when the ticket cannot be had (429, network), without connecting', async () => {
    const { engine, sockets, timers, runTimer } = setup([429, new Error('offline'), 't']);
    await flushAsync();
    expect(sockets).toHaveLength(0);
    expect(engine.flush()!.conn.problem).toMatchObject({ status: 429 });
    expect(timers[0][1]).toBeGreaterThanOrEqual(5000);
    runTimer();
    await flushAsync();
    expect(engine.flush()!.conn.problem).toMatchObject({ code: 'unreachable' });
    runTimer();
    await flushAsync();
    expect(sockets[0].url).toBe('ws://x/ws?ticket=t');
  });

  it('shows a refused handshake and backs off instead of looping', async () => {
    const { engine, sockets, timers, runTimer } = setup(['t1', 't2', 't3', 't4']); // e.g. tickets that expired
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      await flushAsync();
      const ws = sockets[i];
      ws.onopen!(); // the server accepts, then refuses
      ws.push({ type: 'error', code: 'credentials-required', status: 401, message: 'send X-API-Key' });
      expect(engine.flush()!.conn.state).toBe('connecting');
      ws.close(4401);
      const f = engine.flush()!;
      expect(f.conn.state).toBe('closed');
      expect(f.conn.problem).toMatchObject({ code: 'credentials-required', closeCode: 4401 });
      expect(problemLabel(f.conn.problem!)).toBe('sign in required');
      delays.push(timers[0][1]);
      runTimer();
    }
    expect(delays[0]).toBeGreaterThanOrEqual(1000);
    expect(delays[3]).toBeGreaterThan(delays[1]); // the attempt count kept growing
  });

  it('without a session, a server that wants sign-in is asked again only every 30 s', async () => {
    const { engine, sockets, timers } = setup([401]);
    await flushAsync();
    sockets[0].onopen!();
    sockets[0].push({ type: 'error', code: 'credentials-required', status: 401, message: 'send X-API-Key' });
    sockets[0].close(4401);
    expect(timers[0][1]).toBeGreaterThanOrEqual(30_000);
    engine.handle({ type: 'reconnect' }); // signing in does not wait
    await flushAsync();
    expect(sockets).toHaveLength(2);
  });

  it('reports the connection limit (4429) and waits at least 5 s', async () => {
    const { engine, sockets, timers } = setup(['t']);
    await flushAsync();
    sockets[0].onopen!();
    sockets[0].push({ type: 'error', code: 'too-many-connections', status: 429, message: 'the free tier allows 1' });
    sockets[0].close(4429);
    expect(problemLabel(engine.flush()!.conn.problem!)).toBe('connection limit reached');
    expect(timers[0][1]).toBeGreaterThanOrEqual(5000);
  });

  it('reconnects at once under the new identity when told to', async () => {
    const { engine, sockets, ticketCalls, timers } = setup([401, 'fresh']);
    await flushAsync();
    sockets[0].onopen!();
    sockets[0].push(INFO);
    engine.handle({ type: 'reconnect' });
    expect(sockets[0].closed).toBe(true);
    await flushAsync();
    expect(ticketCalls).toHaveLength(2);
    expect(sockets[1].url).toBe('ws://x/ws?ticket=fresh');
    expect(timers).toHaveLength(0); // the old socket's close did not schedule anything
    sockets[1].onopen!();
    sockets[1].push(INFO);
    expect(engine.flush()!.conn.identity).toBe('user');
  });

  it('revocation (4001) is shown and the next connect asks for a ticket again', async () => {
    const { engine, sockets, runTimer, ticketCalls } = setup(['t', 401]);
    await flushAsync();
    sockets[0].onopen!();
    sockets[0].push(INFO);
    sockets[0].close(4001);
    expect(problemLabel(engine.flush()!.conn.problem!)).toBe('access revoked');
    runTimer();
    await flushAsync();
    expect(ticketCalls).toHaveLength(2);
    expect(sockets[1].url).toBe('ws://x/ws');
  });

  it('narrows subscriptions refused with tier_required and reports what the tier leaves out', async () => {
    const { engine, sockets, nextSecond } = setup(['t']);
    await flushAsync();
    const ws = sockets[0];
    ws.onopen!();
    ws.push(INFO);
    engine.handle({ type: 'select', symbol: 'BTC/USD', venue: null, interval: 60 });
    expect(ws.sent).toEqual([
      { op: 'subscribe', channels: ['ticker', 'trades'], symbols: ['ADA/USD', 'BTC/USD', 'ETH/USD', 'SOL/USD'] },
      { op: 'subscribe', channels: ['book', 'ofi'], symbols: ['BTC/USD'] },
    ]);
    ws.push({ type: 'error', id: ws.id(0), code: 'tier_required', message: 'the free tier does not include ADA/USD' });
    ws.push({ type: 'error', id: ws.id(1), code: 'tier_required', message: 'the free tier does not include ofi' });
    expect(ws.sent.slice(2)).toEqual([
      { op: 'subscribe', channels: ['ticker', 'trades'], symbols: ['BTC/USD', 'ETH/USD', 'SOL/USD'] },
      { op: 'subscribe', channels: ['book'], symbols: ['BTC/USD'] },
    ]);
    ws.push({ type: 'error', id: ws.id(2), code: 'tier_required', message: 'the free tier does not include SOL/USD' });
    expect(ws.sent).toHaveLength(4); // the fifth request this second waits
    nextSecond();
    expect(ws.sent[4]).toEqual({ op: 'subscribe', channels: ['ticker', 'trades'], symbols: ['BTC/USD', 'ETH/USD'] });
    ws.push({ type: 'subscribed', id: ws.id(4), streams: [] });
    const denied = engine.flush()!.denied;
    expect(denied).toEqual([
      { channel: '*', symbol: 'ADA/USD', message: 'the free tier does not include ADA/USD' },
      { channel: 'ofi', symbol: '*', message: 'the free tier does not include ofi' },
      { channel: '*', symbol: 'SOL/USD', message: 'the free tier does not include SOL/USD' },
    ]);
    // switching to SOL asks only for what may still be allowed, and never unsubscribes denied pairs
    nextSecond();
    engine.handle({ type: 'select', symbol: 'SOL/USD', venue: null, interval: 60 });
    expect(ws.sent.slice(5)).toEqual([
      { op: 'unsubscribe', channels: ['book'], symbols: ['BTC/USD'] },
    ]); // SOL is out altogether: nothing to ask for
    engine.handle({ type: 'select', symbol: 'ETH/USD', venue: null, interval: 60 });
    expect(ws.sent.slice(6)).toEqual([{ op: 'subscribe', channels: ['book'], symbols: ['ETH/USD'] }]); // ofi is out for every symbol
  });

  it('records REST refusals (403 tier-required) as notices', async () => {
    const denied = json(403, { code: 'tier-required', detail: 'the free tier does not include SOL/USD' });
    const { engine, sockets } = setup([401], { '/analytics/candles/': denied, '/trades/': denied });
    await flushAsync();
    sockets[0].onopen!();
    sockets[0].push(INFO);
    engine.handle({ type: 'select', symbol: 'SOL/USD', venue: null, interval: 60 });
    await flushAsync();
    expect(engine.flush()!.denied).toEqual([{ channel: '*', symbol: 'SOL/USD', message: 'the free tier does not include SOL/USD' }]);
  });

  it('clears what it learnt about the tier when the identity changes', async () => {
    const { engine, sockets } = setup(['t', 401]);
    await flushAsync();
    sockets[0].onopen!();
    sockets[0].push(INFO);
    sockets[0].push({ type: 'error', id: sockets[0].id(0), code: 'tier_required', message: 'the free tier does not include ADA/USD' });
    expect(engine.flush()!.denied.length).toBeGreaterThan(0);
    engine.handle({ type: 'reconnect' });
    await flushAsync();
    expect(engine.flush()!.denied).toEqual([]);
  });
});

describe('Entitlements', () => {
  it('splits a refusal it cannot read, piece by piece, and always ends', () => {
    const e = new Entitlements();
    const req = { op: 'subscribe' as const, channels: ['a', 'b'], symbols: ['X/Y', 'Z/W'] };
    const bySymbol = e.refused(req, 'no');
    expect(bySymbol.map((r) => r.symbols)).toEqual([['X/Y'], ['Z/W']]);
    const byChannel = e.refused(bySymbol[0], 'no');
    expect(byChannel.map((r) => r.channels)).toEqual([['a'], ['b']]);
    expect(e.refused(byChannel[0], 'no')).toEqual([]);
    expect(e.isDenied('a', 'X-Y')).toBe(true);
    expect(e.filter({ ...req, symbols: ['X/Y'], channels: ['a'] })).toBeNull();
    expect(e.refused(req, 'the demo tier does not include the venue kraken')).toEqual([]);
    expect(e.list()).toHaveLength(4);
    expect(e.refused({ ...req, channels: ['c', 'd'] }, 'the free tier does not include c')).toEqual([{ ...req, channels: ['d'] }]);
    expect(e.isDenied('c', 'ANY/USD')).toBe(true);
  });
});

describe('Outbox', () => {
  it('sends at most 4 requests a second and the rest later, in order', () => {
    const sent: string[] = [];
    const timers: [() => void, number][] = [];
    let now = 0;
    const box = new Outbox((t) => sent.push(t), () => now, (fn, ms) => timers.push([fn, ms]));
    for (let i = 0; i < 6; i++) box.push(String(i));
    expect(sent).toEqual(['0', '1', '2', '3']);
    expect(timers).toHaveLength(1);
    expect(timers[0][1]).toBeGreaterThanOrEqual(1000);
    now += timers[0][1];
    timers.shift()![0]();
    expect(sent).toEqual(['0', '1', '2', '3', '4', '5']);
    box.push('6');
    box.clear(); // nothing queued is sent after a close
    expect(sent).toHaveLength(7);
  });
});

describe('close codes', () => {
  it('names each refusal and waits longer for the ones that will not fix themselves', () => {
    expect(closeProblem(4403, null).code).toBe('origin-not-allowed');
    expect(closeProblem(4008, null).code).toBe('slow-consumer');
    expect(closeProblem(1006, null).code).toBe('disconnected');
    expect(closeProblem(4002, null).code).toBe('session-ended');
    expect(problemLabel(closeProblem(4003, null))).toBe('plan changed, reconnecting');
    expect(retryDelay(4003, 0, true, () => 0.5)).toBe(250); // reconnect at once: the new plan
    expect(retryDelay(4403, 0, true, () => 0.5)).toBe(30_000);
    expect(retryDelay(1006, 0, true, () => 0.5)).toBe(250);
    expect(retryDelay(4401, 10, true, () => 0.5)).toBe(10_000);
    expect(retryDelay(4401, 0, false, () => 0.5)).toBe(30_000);
  });
});
