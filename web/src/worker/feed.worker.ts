/// <reference lib="webworker" />
import { FeedEngine } from './feed';
import type { SocketLike } from './ports';
import type { ToWorker } from '../lib/types';

declare const self: DedicatedWorkerGlobalScope;

const engine = new FeedEngine({
  post: (frame) => self.postMessage(frame),
  connect: (url) => new WebSocket(url) as unknown as SocketLike,
  fetch: (url) => fetch(url, { cache: 'no-store', credentials: 'same-origin' }),
  // a fresh single-use ticket before every connect: the session cookie goes along (same origin)
  ticket: (url) =>
    fetch(url, { method: 'POST', cache: 'no-store', credentials: 'same-origin', headers: { Accept: 'application/json' } }),
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
});

// Frames go out at most every `flushMs` (50 ms: 20 updates/s; the UI draws at most once per
// animation frame anyway), and once a second while the page is hidden.
function tick(): void {
  const frame = engine.flush();
  if (frame) self.postMessage(frame);
  setTimeout(tick, engine.hidden ? 1000 : engine.flushMs);
}
tick();

self.onmessage = (ev: MessageEvent<ToWorker>) => engine.handle(ev.data);
