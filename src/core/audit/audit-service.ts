/**
 * Reads an account's audit log, newest first, in Cloudflare's audit-log shape with cursor
 * paging (`cursor` is opaque: the last entry's time and id).
 */
import { listAudit, type AuditRow } from "../../store/repositories/audit-repository.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export interface AuditEntry {
  id: string;
  when: string;
  actor: { type: string; id: string; name: string; ip: string | null };
  action: { type: string; result: boolean; info: string | null };
  resource: { type: string; id: string; zone_id: string | null };
  before: unknown;
  after: unknown;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass back as `cursor` for the next (older) page; null at the end. */
  cursor: string | null;
}

function toEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    when: row.at,
    actor: { type: row.actor_type, id: row.actor_id, name: row.actor_name, ip: row.actor_ip },
    action: { type: row.action, result: row.result === "success", info: row.detail },
    resource: { type: row.resource_type, id: row.resource_id, zone_id: row.zone_id },
    before: row.before === null ? null : JSON.parse(row.before),
    after: row.after === null ? null : JSON.parse(row.after),
  };
}

function dateField(value: string | undefined, field: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw new ValidationError(field, `"${value}" is not a date or date-time`);
  return new Date(parsed).toISOString();
}

export class AuditService {
  readonly #ctx: ServiceContext;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  async list(query: { since?: string; before?: string; cursor?: string; limit?: number } = {}): Promise<AuditPage> {
    const limit = query.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError("limit", "must be a whole number from 1 to 1000");
    let after: { at: string; id: string } | undefined;
    if (query.cursor !== undefined && query.cursor !== "") {
      try {
        const decoded = JSON.parse(Buffer.from(query.cursor, "base64url").toString("utf8")) as { at?: unknown; id?: unknown };
        if (typeof decoded.at !== "string" || typeof decoded.id !== "string") throw new Error("shape");
        after = { at: decoded.at, id: decoded.id };
      } catch {
        throw new ValidationError("cursor", "is not a cursor returned by this API");
      }
    }
    const rows = await listAudit(this.#ctx.db, { account: this.#ctx.scope.account, since: dateField(query.since, "since"), before: dateField(query.before, "before"), after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { entries: page.map(toEntry), cursor: rows.length > limit && last !== undefined ? Buffer.from(JSON.stringify({ at: last.at, id: last.id })).toString("base64url") : null };
  }
}
