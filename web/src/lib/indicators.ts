/** Exponential moving average of closes, seeded with the simple average of the first `n`. */
export function ema(closes: number[], n: number): (number | null)[] {
  const out: (number | null)[] = [];
  const k = 2 / (n + 1);
  let value: number | null = null;
  let sum = 0;
  closes.forEach((c, i) => {
    if (i < n - 1) {
      sum += c;
      out.push(null);
    } else if (i === n - 1) {
      sum += c;
      value = sum / n;
      out.push(value);
    } else {
      value = c * k + (value as number) * (1 - k);
      out.push(value);
    }
  });
  return out;
}
