/**
 * The audit log: one row per change attempt, newest first by (at, id). SQL only.
 */
import type { Insertable, Kysely, Selectable } from "kysely";
import type { AuditLogTable, Database } from "../schema.ts";

export type AuditRow = Selectable<AuditLogTable>;

export async function insertAudit(db: Kysely<Database>, row: Insertable<AuditLogTable>): Promise<void> {
  await db.insertInto("audit_log").values(row).execute();
}

export interface AuditQuery {
  account: string;
  since?: string;
  before?: string;
  /** Continue after this (at, id), newest first. */
  after?: { at: string; id: string };
  limit: number;
}

export function listAudit(db: Kysely<Database>, query: AuditQuery): Promise<AuditRow[]> {
  let q = db.selectFrom("audit_log").selectAll().where("account_id", "=", query.account);
  if (query.since !== undefined) q = q.where("at", ">=", query.since);
  if (query.before !== undefined) q = q.where("at", "<", query.before);
  const cursor = query.after;
  if (cursor !== undefined) q = q.where((eb) => eb.or([eb("at", "<", cursor.at), eb.and([eb("at", "=", cursor.at), eb("id", "<", cursor.id)])]));
  return q.orderBy("at", "desc").orderBy("id", "desc").limit(query.limit).execute();
}
