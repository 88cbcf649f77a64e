/**
 * Zones of one account: the domains mail is routed for, their Email Routing settings
 * (enabled, sub-addressing, dot-insensitive matching, DNS status) and their inbound
 * authentication policy. A zone is named by its id (API) or its domain name (CLI).
 *
 * Promises: a zone of another account is "not found", never "forbidden", so a token learns
 * nothing about other accounts; a domain is routed by at most one account.
 */
import type { Insertable } from "kysely";
import { normalizeDomain } from "../../routing/email-address.ts";
import { DELIVERY_MODES, type ZonePolicy } from "../../routing/routing-table.ts";
import * as zones from "../../store/repositories/zone-repository.ts";
import type { ZoneRow } from "../../store/repositories/zone-repository.ts";
import type { Database, ZoneTable } from "../../store/schema.ts";
import type { Kysely } from "kysely";
import { pageWindow, type Page, type PageRequest } from "../paging.ts";
import { newId, type ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";

export interface Zone {
  id: string;
  account: string;
  name: string;
  enabled: boolean;
  supportSubaddress: boolean;
  dotInsensitive: boolean;
  status: string;
  policy: ZonePolicy;
  created: string;
  modified: string;
}

export type ZoneStatus = "unconfigured" | "ready" | "misconfigured";

export interface ZoneChanges extends Partial<ZonePolicy> {
  enabled?: boolean;
  supportSubaddress?: boolean;
  dotInsensitive?: boolean;
}

export function zonePolicyOf(row: Pick<ZoneRow, "enforce_dmarc" | "require_auth" | "reject_quarantine" | "spam_threshold" | "sign_outbound" | "delivery_mode">): ZonePolicy {
  return {
    enforceDmarc: row.enforce_dmarc === 1,
    requireAuth: row.require_auth === 1,
    rejectQuarantine: row.reject_quarantine === 1,
    spamThreshold: row.spam_threshold,
    signOutbound: row.sign_outbound !== 0,
    deliveryMode: row.delivery_mode === "queue" ? "queue" : "relay",
  };
}

export function toZone(row: ZoneRow): Zone {
  return {
    id: row.id,
    account: row.account_id,
    name: row.name,
    enabled: row.enabled === 1,
    supportSubaddress: row.support_subaddress === 1,
    dotInsensitive: row.dot_insensitive === 1,
    status: row.status,
    policy: zonePolicyOf(row),
    created: row.created_at,
    modified: row.modified_at,
  };
}

export function zoneName(input: unknown, field = "name"): string {
  const name = typeof input === "string" ? normalizeDomain(input) : null;
  if (name === null || !name.includes(".")) throw new ValidationError(field, `"${String(input ?? "")}" is not a domain name (e.g. example.com)`);
  return name;
}

/** A zone reference: a domain name (has a dot) or a zone id. */
export async function findZone(db: Kysely<Database>, account: string, ref: string, field = "zone"): Promise<ZoneRow> {
  const text = String(ref ?? "").trim();
  const row = text.includes(".") ? await zones.findZoneByName(db, account, zoneName(text, field)) : await zones.findZoneById(db, account, text);
  if (row === undefined) {
    const hint = text.includes(".") ? `; add it first with "mailroute domain add ${text.toLowerCase()}"` : "";
    throw new ValidationError(field, `${text.includes(".") ? text.toLowerCase() : `zone "${text}"`} is not a domain of this account${hint}`, "not_found");
  }
  return row;
}

const STATUSES: readonly ZoneStatus[] = ["unconfigured", "ready", "misconfigured"];

export class ZoneService {
  readonly #ctx: ServiceContext;

  constructor(ctx: ServiceContext) {
    this.#ctx = ctx;
  }

  async list(filter: { name?: string } = {}, paging?: PageRequest): Promise<Page<Zone>> {
    const window = pageWindow(paging, { perPage: 20, maxPerPage: 1000 });
    const name = filter.name === undefined ? undefined : (normalizeDomain(filter.name) ?? filter.name.toLowerCase());
    const query = { account: this.#ctx.scope.account, name };
    const [rows, total] = await Promise.all([zones.listZones(this.#ctx.db, query, window), zones.countZones(this.#ctx.db, query)]);
    return { items: rows.map(toZone), page: window.page, perPage: window.perPage, totalCount: total };
  }

  async all(): Promise<Zone[]> {
    return (await zones.listZones(this.#ctx.db, { account: this.#ctx.scope.account })).map(toZone);
  }

  async get(ref: string, field = "zone"): Promise<Zone> {
    return toZone(await findZone(this.#ctx.db, this.#ctx.scope.account, ref, field));
  }

  async create(input: string, options: { supportSubaddress?: boolean; dotInsensitive?: boolean; enabled?: boolean } = {}): Promise<Zone> {
    return this.#ctx.change({ action: "zone.create", resourceType: "zone" }, async (trx) => {
      const name = zoneName(input);
      // One account per domain: the SMTP server finds a zone by name alone. The message does
      // not say which account holds it.
      if (await zones.zoneNameTaken(trx, name)) throw new ValidationError("name", `${name} is already routed by this server`, "conflict");
      const now = this.#ctx.timestamp();
      const row = {
        id: newId(),
        account_id: this.#ctx.scope.account,
        name,
        enabled: options.enabled === false ? 0 : 1,
        support_subaddress: options.supportSubaddress ? 1 : 0,
        dot_insensitive: options.dotInsensitive ? 1 : 0,
        status: "unconfigured",
        enforce_dmarc: 1,
        require_auth: 1,
        reject_quarantine: 0,
        spam_threshold: null,
        sign_outbound: 1,
        delivery_mode: "relay",
        created_at: now,
        modified_at: now,
      } satisfies Insertable<ZoneTable>;
      await zones.insertZone(trx, row);
      const zone = toZone(row as ZoneRow);
      return { value: zone, resourceId: zone.id, zoneId: zone.id, after: zone };
    });
  }

  async update(ref: string, changes: ZoneChanges): Promise<Zone> {
    return this.#ctx.change({ action: "zone.update", resourceType: "zone" }, async (trx) => {
      const before = toZone(await findZone(trx, this.#ctx.scope.account, ref));
      const patch: Partial<Insertable<ZoneTable>> = { modified_at: this.#ctx.timestamp() };
      if (changes.enforceDmarc !== undefined) patch.enforce_dmarc = changes.enforceDmarc ? 1 : 0;
      if (changes.requireAuth !== undefined) patch.require_auth = changes.requireAuth ? 1 : 0;
      if (changes.rejectQuarantine !== undefined) patch.reject_quarantine = changes.rejectQuarantine ? 1 : 0;
      if (changes.signOutbound !== undefined) patch.sign_outbound = changes.signOutbound ? 1 : 0;
      if (changes.deliveryMode !== undefined) {
        if (!(DELIVERY_MODES as readonly string[]).includes(changes.deliveryMode)) throw new ValidationError("delivery_mode", `"${String(changes.deliveryMode)}" is not one of ${DELIVERY_MODES.join(", ")}`);
        patch.delivery_mode = changes.deliveryMode;
      }
      if (changes.spamThreshold !== undefined) {
        const threshold = changes.spamThreshold;
        if (threshold !== null && !(typeof threshold === "number" && Number.isFinite(threshold) && threshold >= 0 && threshold <= 5)) {
          throw new ValidationError("spam_threshold", `${String(threshold)} is not a score from 0 to 5 (or "off")`);
        }
        patch.spam_threshold = threshold;
      }
      if (changes.enabled !== undefined) patch.enabled = changes.enabled ? 1 : 0;
      if (changes.supportSubaddress !== undefined) patch.support_subaddress = changes.supportSubaddress ? 1 : 0;
      if (changes.dotInsensitive !== undefined) patch.dot_insensitive = changes.dotInsensitive ? 1 : 0;
      await zones.updateZone(trx, before.id, patch);
      const after = toZone((await zones.findZoneById(trx, this.#ctx.scope.account, before.id))!);
      return { value: after, resourceId: after.id, zoneId: after.id, before, after };
    });
  }

  /**
   * Records what `mailroute doctor` found. Writes (and bumps the version) only when the
   * status changes: a doctor run from cron every minute must not make every server reload.
   */
  async setStatus(ref: string, status: ZoneStatus): Promise<Zone> {
    if (!STATUSES.includes(status)) throw new ValidationError("status", `"${status}" is not one of ${STATUSES.join(", ")}`);
    const zone = await this.get(ref);
    if (zone.status === status) return zone;
    return this.#ctx.change({ action: "zone.status", resourceType: "zone", resourceId: zone.id, zoneId: zone.id }, async (trx) => {
      const modified = this.#ctx.timestamp();
      await zones.updateZone(trx, zone.id, { status, modified_at: modified });
      const after = { ...zone, status, modified };
      return { value: after, before: { status: zone.status }, after: { status } };
    });
  }

  async remove(ref: string): Promise<Zone> {
    return this.#ctx.change({ action: "zone.delete", resourceType: "zone" }, async (trx) => {
      const zone = toZone(await findZone(trx, this.#ctx.scope.account, ref));
      await zones.deleteZoneCascade(trx, zone.id);
      return { value: zone, resourceId: zone.id, zoneId: zone.id, before: zone };
    });
  }
}
