/**
 * backoff is the delay before reconnect attempt n (0-based): full jitter
 * between the floor and an exponentially growing ceiling, capped at max.
 * It always lies in [min, max].
 */
export function backoff(n: number, min: number, max: number, random: () => number): number {
  const cap = Math.min(max, min * Math.pow(2, Math.min(n, 30) + 1));
  return Math.min(max, Math.max(min, min + random() * (cap - min)));
}
