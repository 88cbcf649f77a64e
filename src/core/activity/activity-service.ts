/**
 * The activity log and analytics of one account: what happened to each message and
 * recipient (filtered, paged, newest first), one event in detail, and summaries per zone
 * over 24 h / 7 d / 30 d in the outcome vocabulary of analytics/event-outcome.ts (old stored
 * words are mapped on read, so callers only ever see that vocabulary).
 *
 * Every read first waits for this node's event writes in flight (store/pending-writes.ts): the
 * sender's reply no longer waits for them, and a message is in the activity log as soon as its
 * sender has the answer, as it was when the reply waited.
 */
import { normalizeOutcome, OUTCOMES, type Outcome } from "../../analytics/event-outcome.ts";
import { countZoneOutcomes, findZoneEvent, groupZoneEvents, listEvents, listZoneEvents, type EventRow, type GroupDimension } from "../../store/repositories/event-repository.ts";
import { pageWindow, type Page, type PageRequest } from "../paging.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";
import { findZone } from "../zones/zone-service.ts";
import type { PendingWrites } from "../../store/pending-writes.ts";

export const SUMMARY_RANGES = ["24h", "7d", "30d"] as const;
export type SummaryRange = (typeof SUMMARY_RANGES)[number];

export type OutcomeCounts = { received: number } & Record<Outcome, number>;
export interface Summary {
  range: SummaryRange;
  totals: OutcomeCounts;
  series: ({ start: string } & OutcomeCounts)[];
}

export interface ActivityFilter {
  since?: string;
  until?: string;
  outcome?: string;
  to?: string;
  from?: string;
  q?: string;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function isoTime(field: string, value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const time = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(time)) throw new ValidationError(field, "must be an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)");
  return new Date(time).toISOString();
}

function outcomeFilter(value: string | undefined): Outcome | undefined {
  if (value === undefined || value === "") return undefined;
  if (!(OUTCOMES as readonly string[]).includes(value)) throw new ValidationError("outcome", `must be one of ${OUTCOMES.join(", ")}`);
  return value as Outcome;
}

function rowLimit(limit: number): number {
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= 10_000)) throw new ValidationError("limit", "must be a whole number from 1 to 10000");
  return limit;
}

function emptyCounts(): OutcomeCounts {
  return { received: 0, forwarded: 0, dropped: 0, rejected: 0, delivery_failed: 0, deferred: 0, worker: 0, queued: 0 };
}

/** A stored row with its outcome in today's vocabulary. */
export function withCurrentOutcome(row: EventRow): EventRow {
  return { ...row, outcome: normalizeOutcome(row.outcome, row.reply_code, row.action) };
}

export class ActivityService {
  readonly #ctx: ServiceContext;
  readonly #now: () => number;
  readonly #pendingWrites: PendingWrites | null;

  constructor(ctx: ServiceContext, now: () => number = Date.now, pendingWrites: PendingWrites | null = null) {
    this.#ctx = ctx;
    this.#now = now;
    this.#pendingWrites = pendingWrites;
  }

  /** This node's events written so far, before a read. */
  #written(): Promise<void> {
    return this.#pendingWrites?.settled() ?? Promise.resolve();
  }

  /** `allAccounts`: the operator (only) may see every account's mail at once. */
  async recent(query: { limit?: number; since?: string; outcome?: string; to?: string; from?: string; allAccounts?: boolean } = {}): Promise<EventRow[]> {
    const limit = query.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError("limit", "must be a whole number from 1 to 1000");
    await this.#written();
    const rows = await listEvents(this.#ctx.db, {
      account: query.allAccounts === true && this.#ctx.scope.actor.type === "operator" ? null : this.#ctx.scope.account,
      since: isoTime("since", query.since),
      outcome: outcomeFilter(query.outcome),
      to: query.to === "" ? undefined : query.to,
      from: query.from === "" ? undefined : query.from,
      limit,
    });
    return rows.map(withCurrentOutcome);
  }

  /** One zone's events, newest first. */
  async list(zoneRef: string, filter: ActivityFilter = {}, paging?: PageRequest): Promise<Page<EventRow>> {
    const zone = await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef, "zone_id");
    const window = pageWindow(paging, { perPage: 20, maxPerPage: 100 });
    await this.#written();
    const { rows, total } = await listZoneEvents(this.#ctx.db, this.#zoneFilter(zone.name, filter), window);
    return { items: rows.map(withCurrentOutcome), page: window.page, perPage: window.perPage, totalCount: total };
  }

  /** Up to `limit` (1–10,000) events of the zone, newest or oldest first: the GraphQL dataset's rows. */
  async rows(zoneRef: string, filter: ActivityFilter, options: { limit: number; oldestFirst: boolean }): Promise<EventRow[]> {
    const zone = await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef, "zone_id");
    const limit = rowLimit(options.limit);
    await this.#written();
    const { rows } = await listZoneEvents(this.#ctx.db, this.#zoneFilter(zone.name, filter), { limit, offset: 0, oldestFirst: options.oldestFirst });
    return rows.map(withCurrentOutcome);
  }

  /** Event counts grouped by `dimensions`, largest first: the GraphQL groups dataset. */
  async groups(zoneRef: string, filter: ActivityFilter, dimensions: readonly GroupDimension[], limit: number) {
    const zone = await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef, "zone_id");
    const filters = this.#zoneFilter(zone.name, filter);
    const limited = rowLimit(limit);
    await this.#written();
    return groupZoneEvents(this.#ctx.db, filters, dimensions, limited);
  }

  #zoneFilter(zone: string, filter: ActivityFilter) {
    return {
      account: this.#ctx.scope.account,
      zone,
      since: isoTime("since", filter.since),
      until: isoTime("until", filter.until),
      outcome: outcomeFilter(filter.outcome),
      to: filter.to === "" ? undefined : filter.to,
      from: filter.from === "" ? undefined : filter.from,
      q: filter.q,
    };
  }

  async get(zoneRef: string, id: string): Promise<EventRow> {
    const zone = await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef, "zone_id");
    await this.#written();
    const row = /^\d{1,15}$/.test(id) ? await findZoneEvent(this.#ctx.db, this.#ctx.scope.account, zone.name, Number(id)) : undefined;
    if (row === undefined) throw new ValidationError("id", `no activity ${JSON.stringify(id.slice(0, 40))} in this zone`, "not_found");
    return withCurrentOutcome(row);
  }

  /** Counts per outcome: hourly buckets for 24h, daily (UTC) for 7d and 30d, oldest first, empty buckets included. */
  async summary(zoneRef: string, range: SummaryRange = "24h"): Promise<Summary> {
    if (!(SUMMARY_RANGES as readonly string[]).includes(range)) throw new ValidationError("range", `must be one of ${SUMMARY_RANGES.join(", ")}`);
    const zone = await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef, "zone_id");
    const hourly = range === "24h";
    const step = hourly ? HOUR : DAY;
    const count = hourly ? 24 : range === "7d" ? 7 : 30;
    const first = Math.floor(this.#now() / step) * step - (count - 1) * step;
    const chars = hourly ? 13 : 10;
    const series = Array.from({ length: count }, (_, i) => ({ start: new Date(first + i * step).toISOString(), ...emptyCounts() }));
    const byBucket = new Map(series.map((entry) => [entry.start.slice(0, chars), entry]));
    const totals = emptyCounts();
    await this.#written();
    for (const row of await countZoneOutcomes(this.#ctx.db, this.#ctx.scope.account, zone.name, new Date(first).toISOString(), chars)) {
      const entry = byBucket.get(row.bucket);
      if (entry === undefined) continue;
      const outcome = normalizeOutcome(row.outcome, null, "");
      entry[outcome] += row.count;
      entry.received += row.count;
      totals[outcome] += row.count;
      totals.received += row.count;
    }
    return { range, totals, series };
  }
}
