// Test doubles for the feed engine (used by the *.test.ts files only).
import type { SocketLike } from './ports';

export class FakeSocket implements SocketLike {
  sent: Record<string, unknown>[] = []; // requests without their `id`
  ids: number[] = [];
  closed = false;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code?: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url = '') {}
  send(text: string) {
    const { id, ...rest } = JSON.parse(text) as Record<string, unknown>;
    this.ids.push(id as number);
    this.sent.push(rest);
  }
  close(code = 1000) {
    this.closed = true;
    this.onclose?.({ code });
  }
  push(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  /** The id of the n-th request sent (from the end with a negative n). */
  id(n: number): number {
    return this.ids[n < 0 ? this.ids.length + n : n];
  }
}
