/** Reconnect delay: exponential from 250 ms, capped at 10 s, with +-20 % jitter from `rand`. */
export function backoffDelay(attempt: number, rand: () => number = Math.random): number {
  const base = Math.min(10_000, 250 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.8 + 0.4 * rand()));
}
