/**
 * backoff is the delay before reconnect attempt n (0-based): full jitter
 * between the floor and an exponentially growing ceiling, capped at max.
 * It always lies in [min, max].
 */
export declare function backoff(n: number, min: number, max: number, random: () => number): number;
