/**
 * What every account-scoped service shares: the store, the clock, who is acting for which
 * account, and the one way to change configuration — `change()`, which validates inside a
 * transaction, bumps the configuration version (so running servers reload) and writes the
 * audit entry in that same transaction. A refused change (a ValidationError) is audited too,
 * as a failure, so an operator can see what was attempted and by whom.
 *
 * Promises: a change is stored, versioned and audited together or not at all.
 */
import { randomBytes } from "node:crypto";
import type { Kysely, Transaction } from "kysely";
import { bumpConfigVersion } from "../store/config-version.ts";
import { insertAudit } from "../store/repositories/audit-repository.ts";
import type { Database } from "../store/schema.ts";
import type { Store } from "../store/store.ts";
import { ValidationError } from "./validation-error.ts";

/** Who makes a request: an API token, the operator (admin token or the CLI on the server), or mailroute itself. */
export interface Actor {
  type: "token" | "operator" | "system";
  id: string;
  name: string;
  ip: string | null;
}

export interface AccountScope {
  account: string;
  actor: Actor;
}

export const CLI_OPERATOR: Actor = Object.freeze({ type: "operator", id: "cli", name: "mailroute CLI", ip: null });
export const SYSTEM_ACTOR: Actor = Object.freeze({ type: "system", id: "mailroute", name: "mailroute", ip: null });

export interface ChangeSpec {
  /** e.g. "rule.create" */
  action: string;
  resourceType: string;
  /** Known before the change (updates, deletes); creates return theirs from the work. */
  resourceId?: string;
  zoneId?: string | null;
  /** Whether routing configuration changes (bumps the version). Default true. */
  routing?: boolean;
}

export interface ChangeOutcome<T> {
  value: T;
  resourceId?: string;
  zoneId?: string | null;
  before?: unknown;
  after?: unknown;
  /** Overrides the spec's `routing` once the work knows (a redeploy that changed nothing bumps nothing). */
  routing?: boolean;
}

export interface ServiceContext {
  readonly db: Kysely<Database>;
  readonly store: Store;
  readonly scope: AccountScope;
  now(): Date;
  timestamp(): string;
  change<T>(spec: ChangeSpec, work: (trx: Transaction<Database>) => Promise<ChangeOutcome<T>>): Promise<T>;
}

// Within one process, entries written in the same millisecond keep their order through a
// sequence number (random bytes alone sorted them at random: the audit log then showed a
// change before the one that preceded it).
let lastAuditMs = -1;
let auditSequence = 0;

/** Sortable unique ids for audit entries: time, then a per-process sequence, so (at, id) orders as inserted. */
function auditId(now: Date): string {
  const ms = Math.max(now.getTime(), lastAuditMs);
  auditSequence = ms === lastAuditMs ? auditSequence + 1 : 0;
  lastAuditMs = ms;
  return `${ms.toString(36).padStart(9, "0")}${auditSequence.toString(36).padStart(4, "0")}${randomBytes(6).toString("hex")}`;
}

export function newId(): string {
  return randomBytes(16).toString("hex");
}

export function createServiceContext(store: Store, scope: AccountScope, now: () => Date = () => new Date()): ServiceContext {
  const db = store.db;
  const json = (value: unknown) => (value === undefined || value === null ? null : JSON.stringify(value));
  function auditRow(spec: ChangeSpec, at: Date, fields: { resourceId?: string; zoneId?: string | null; before?: unknown; after?: unknown; result: "success" | "failure"; detail?: string }) {
    return {
      id: auditId(at),
      account_id: scope.account,
      at: at.toISOString(),
      actor_type: scope.actor.type,
      actor_id: scope.actor.id,
      actor_name: scope.actor.name,
      actor_ip: scope.actor.ip,
      action: spec.action,
      resource_type: spec.resourceType,
      resource_id: fields.resourceId ?? spec.resourceId ?? "",
      zone_id: fields.zoneId ?? spec.zoneId ?? null,
      before: json(fields.before),
      after: json(fields.after),
      result: fields.result,
      detail: fields.detail ?? null,
    };
  }
  return {
    db,
    store,
    scope,
    now,
    timestamp: () => now().toISOString(),
    async change(spec, work) {
      try {
        return await db.transaction().execute(async (trx) => {
          const outcome = await work(trx);
          if ((outcome.routing ?? spec.routing) !== false) await bumpConfigVersion(trx);
          await insertAudit(trx, auditRow(spec, now(), { ...outcome, result: "success" }));
          return outcome.value;
        });
      } catch (error) {
        if (error instanceof ValidationError) {
          // Best effort: a failing audit write must not hide the operator's real error.
          await insertAudit(db, auditRow(spec, now(), { result: "failure", detail: error.message })).catch(() => undefined);
        }
        throw error;
      }
    },
  };
}
