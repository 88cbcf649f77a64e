/**
 * Activity-log filters ↔ the query string of …/email/routing/activity: only the filters that
 * are set are sent, so an empty form asks for everything. Pure, so it is unit-tested.
 */
export interface ActivityFilters {
  since: string;
  outcome: string;
  to: string;
  from: string;
  q: string;
  page: number;
}

export const NO_FILTERS: ActivityFilters = { since: "24h", outcome: "", to: "", from: "", q: "", page: 1 };

const SINCE_MS: Record<string, number> = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 };

export function activityQuery(filters: ActivityFilters, now: Date, perPage = 50): string {
  const params = new URLSearchParams();
  const window = SINCE_MS[filters.since];
  if (window !== undefined) params.set("since", new Date(now.getTime() - window).toISOString());
  for (const key of ["outcome", "to", "from", "q"] as const) {
    const value = filters[key].trim();
    if (value !== "") params.set(key, value);
  }
  params.set("page", String(filters.page));
  params.set("per_page", String(perPage));
  return params.toString();
}

/** A CSS class for an authentication verdict: pass, fail, or neutral for anything else. */
export function verdictClass(result: string | null): "pass" | "fail" | "neutral" {
  if (result === null) return "neutral";
  const value = result.toLowerCase();
  if (value.startsWith("pass")) return "pass";
  if (value.startsWith("fail") || value === "permerror" || value === "softfail") return "fail";
  return "neutral";
}
