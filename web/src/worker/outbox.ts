// Requests to the socket, paced: at most `perSecond` in any second, so quick symbol switching
// (unsubscribe + subscribe each time) stays under the tier's inbound limit instead of getting the
// connection closed with 1008. The smallest tier allows 5 messages/s; 4 leaves room for a ping.
export class Outbox {
  private queue: string[] = [];
  private sentAt: number[] = [];
  private waiting = false;
  private generation = 0;

  constructor(
    private send: (text: string) => void,
    private now: () => number,
    private setTimer: (fn: () => void, ms: number) => unknown,
    private perSecond = 4,
  ) {}

  push(text: string): void {
    this.queue.push(text);
    this.drain();
  }

  /** Drop what is queued (the socket closed; a new one starts with its own subscriptions). */
  clear(): void {
    this.queue = [];
    this.sentAt = [];
    this.waiting = false;
    this.generation++;
  }

  get pending(): number {
    return this.queue.length;
  }

  private drain(): void {
    const now = this.now();
    this.sentAt = this.sentAt.filter((t) => now - t < 1000);
    while (this.queue.length && this.sentAt.length < this.perSecond) {
      this.send(this.queue.shift()!);
      this.sentAt.push(now);
    }
    if (this.queue.length && !this.waiting) {
      this.waiting = true;
      const gen = this.generation;
      this.setTimer(() => {
        if (gen !== this.generation) return;
        this.waiting = false;
        this.drain();
      }, Math.max(10, 1000 - (now - this.sentAt[0]) + 5));
    }
  }
}
