/**
 * Latency distributions for the benchmark: percentiles over recorded per-message times and the
 * difference between two distributions (mailroute minus the sink alone).
 *
 * Promises: pure; percentiles use the nearest-rank method (a p99 is a time some message really
 * took, never an interpolation between two); an empty distribution yields nulls rather than 0,
 * so a scenario that delivered nothing cannot pass for an infinitely fast one.
 */

export interface LatencySummary {
  count: number;
  meanMs: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export interface LatencyDifference {
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
}

export function summarizeLatency(samplesMs: readonly number[]): LatencySummary {
  if (samplesMs.length === 0) return { count: 0, meanMs: null, p50Ms: null, p90Ms: null, p99Ms: null, maxMs: null };
  const sorted = Float64Array.from(samplesMs).sort();
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    meanMs: round(total / sorted.length),
    p50Ms: round(nearestRank(sorted, 50)),
    p90Ms: round(nearestRank(sorted, 90)),
    p99Ms: round(nearestRank(sorted, 99)),
    maxMs: round(sorted[sorted.length - 1]!),
  };
}

/** `through` minus `direct`, percentile by percentile: the time mailroute adds to each message. */
export function latencyDifference(through: LatencySummary, direct: LatencySummary): LatencyDifference {
  const minus = (a: number | null, b: number | null) => (a === null || b === null ? null : round(a - b));
  return { p50Ms: minus(through.p50Ms, direct.p50Ms), p90Ms: minus(through.p90Ms, direct.p90Ms), p99Ms: minus(through.p99Ms, direct.p99Ms) };
}

function nearestRank(sorted: Float64Array, percentile: number): number {
  const rank = Math.ceil((percentile / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

// Sub-millisecond noise is below what a 2-core loopback run can resolve; three decimals is plenty.
function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
