/**
 * Pure geometry for the overview chart: a summary series (one bucket per hour or day) becomes
 * SVG polyline points per outcome, scaled into a fixed view box so the chart needs no library
 * and no inline styles (the CSP forbids them).
 */

export const OUTCOMES = ["received", "forwarded", "dropped", "rejected", "delivery_failed", "deferred", "worker", "queued"] as const;
export type Outcome = (typeof OUTCOMES)[number];
export type Counts = Record<Outcome, number>;
export interface Bucket extends Partial<Counts> {
  start: string;
}

export interface ChartGeometry {
  width: number;
  height: number;
  max: number;
  lines: { outcome: Outcome; points: string }[];
}

export function chartGeometry(series: readonly Bucket[], outcomes: readonly Outcome[], width = 600, height = 160): ChartGeometry {
  const max = Math.max(1, ...series.flatMap((bucket) => outcomes.map((outcome) => bucket[outcome] ?? 0)));
  const step = series.length > 1 ? width / (series.length - 1) : 0;
  const lines = outcomes.map((outcome) => ({
    outcome,
    points: series.map((bucket, index) => `${round(index * step)},${round(height - ((bucket[outcome] ?? 0) / max) * height)}`).join(" "),
  }));
  return { width, height, max, lines };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
