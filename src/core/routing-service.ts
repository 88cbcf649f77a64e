/**
 * The routing service: zones, destination addresses, rules and catch-alls, for every front end
 * (CLI today, the API and dashboard later). Validation lives here and names the field.
 *
 * Promises: every change bumps the configuration version in the same transaction, so running
 * servers (which poll it) pick the change up; nothing invalid is ever stored.
 */
import { randomBytes } from "node:crypto";
import type { Insertable, Kysely, Selectable, Transaction } from "kysely";
import { normalizeDomain, parseAddress, parseDestinationAddress, isAddressProblem } from "../routing/email-address.ts";
import type { RuleAction, ZonePolicy } from "../routing/routing-table.ts";
import { bumpConfigVersion } from "../store/config-version.ts";
import type { Database, RuleTable, ZoneTable } from "../store/schema.ts";
import { fromRuleAction, toRuleAction, type CloudflareAction, type CloudflareMatcher } from "./rule-actions.ts";
import { ValidationError } from "./validation-error.ts";

export const DEFAULT_ACCOUNT = "default";

export interface Zone {
  id: string;
  name: string;
  enabled: boolean;
  supportSubaddress: boolean;
  dotInsensitive: boolean;
  status: string;
  policy: ZonePolicy;
  created: string;
  modified: string;
}

export { DEFAULT_ZONE_POLICY, type ZonePolicy } from "../routing/routing-table.ts";

export function zonePolicyOf(row: Pick<Selectable<ZoneTable>, "enforce_dmarc" | "require_auth" | "reject_quarantine" | "spam_threshold" | "sign_outbound">): ZonePolicy {
  return { enforceDmarc: row.enforce_dmarc === 1, requireAuth: row.require_auth === 1, rejectQuarantine: row.reject_quarantine === 1, spamThreshold: row.spam_threshold, signOutbound: row.sign_outbound !== 0 };
}

export interface DestinationAddress {
  id: string;
  email: string;
  verified: string | null;
  created: string;
  modified: string;
}

export interface Rule {
  id: string;
  zone: string;
  name: string;
  enabled: boolean;
  priority: number;
  matchers: CloudflareMatcher[];
  actions: CloudflareAction[];
  action: RuleAction;
  created: string;
  modified: string;
}

export interface CatchAll {
  zone: string;
  name: string;
  enabled: boolean;
  actions: CloudflareAction[];
  action: RuleAction | null;
  modified: string;
}

export function newId(): string {
  return randomBytes(16).toString("hex");
}

function toZone(row: Selectable<ZoneTable>): Zone {
  return {
    id: row.id,
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

function toRule(row: RuleTable, zone: string): Rule {
  const actions = JSON.parse(row.actions) as CloudflareAction[];
  return {
    id: row.id,
    zone,
    name: row.name,
    enabled: row.enabled === 1,
    priority: row.priority,
    matchers: JSON.parse(row.matchers) as CloudflareMatcher[],
    actions,
    action: toRuleAction(actions),
    created: row.created_at,
    modified: row.modified_at,
  };
}

export interface RoutingServiceOptions {
  now?: () => Date;
  account?: string;
}

export class RoutingService {
  readonly #db: Kysely<Database>;
  readonly #now: () => Date;
  readonly #account: string;

  constructor(db: Kysely<Database>, options: RoutingServiceOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => new Date());
    this.#account = options.account ?? DEFAULT_ACCOUNT;
  }

  #timestamp(): string {
    return this.#now().toISOString();
  }

  async #change<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute(async (trx) => {
      const result = await work(trx);
      await bumpConfigVersion(trx);
      return result;
    });
  }

  // ── zones ───────────────────────────────────────────────────────────────

  static zoneName(input: string, field = "domain"): string {
    const name = normalizeDomain(String(input ?? ""));
    if (name === null || !name.includes(".")) throw new ValidationError(field, `"${input}" is not a domain name (e.g. example.com)`);
    return name;
  }

  async addZone(input: string, options: { supportSubaddress?: boolean; dotInsensitive?: boolean; enabled?: boolean } = {}): Promise<Zone> {
    const name = RoutingService.zoneName(input);
    const existing = await this.#db.selectFrom("zones").select("id").where("name", "=", name).executeTakeFirst();
    if (existing !== undefined) throw new ValidationError("domain", `${name} is already added`, "conflict");
    const now = this.#timestamp();
    const row = {
      id: newId(),
      account_id: this.#account,
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
      created_at: now,
      modified_at: now,
    } satisfies Insertable<ZoneTable>;
    await this.#change((trx) => trx.insertInto("zones").values(row).execute());
    return toZone(row);
  }

  async listZones(): Promise<Zone[]> {
    const rows = await this.#db.selectFrom("zones").selectAll().where("account_id", "=", this.#account).orderBy("name").execute();
    return rows.map(toZone);
  }

  async getZone(input: string, field = "domain"): Promise<Zone> {
    const name = RoutingService.zoneName(input, field);
    const row = await this.#db.selectFrom("zones").selectAll().where("name", "=", name).where("account_id", "=", this.#account).executeTakeFirst();
    if (row === undefined) throw new ValidationError(field, `${name} is not a domain of this account; add it first with "mailroute domain add ${name}"`, "not_found");
    return toZone(row);
  }

  async updateZone(input: string, changes: { enabled?: boolean; supportSubaddress?: boolean; dotInsensitive?: boolean } & Partial<ZonePolicy>): Promise<Zone> {
    const zone = await this.getZone(input);
    const patch: Partial<Insertable<ZoneTable>> = { modified_at: this.#timestamp() };
    if (changes.enforceDmarc !== undefined) patch.enforce_dmarc = changes.enforceDmarc ? 1 : 0;
    if (changes.requireAuth !== undefined) patch.require_auth = changes.requireAuth ? 1 : 0;
    if (changes.rejectQuarantine !== undefined) patch.reject_quarantine = changes.rejectQuarantine ? 1 : 0;
    if (changes.signOutbound !== undefined) patch.sign_outbound = changes.signOutbound ? 1 : 0;
    if (changes.spamThreshold !== undefined) {
      const threshold = changes.spamThreshold;
      if (threshold !== null && !(Number.isFinite(threshold) && threshold >= 0 && threshold <= 5)) throw new ValidationError("spam_threshold", `${threshold} is not a score from 0 to 5 (or "off")`);
      patch.spam_threshold = threshold;
    }
    if (changes.enabled !== undefined) patch.enabled = changes.enabled ? 1 : 0;
    if (changes.supportSubaddress !== undefined) patch.support_subaddress = changes.supportSubaddress ? 1 : 0;
    if (changes.dotInsensitive !== undefined) patch.dot_insensitive = changes.dotInsensitive ? 1 : 0;
    await this.#change((trx) => trx.updateTable("zones").set(patch).where("id", "=", zone.id).execute());
    return this.getZone(zone.name);
  }

  /**
   * Records what `mailroute doctor` found (Cloudflare's email routing status: "ready" when the
   * zone's DNS records are all as they should be). Writes, and bumps the configuration version,
   * only when the status changes: a doctor run from cron every minute must not make every
   * server reload its routing table every minute.
   */
  async setZoneStatus(input: string, status: "unconfigured" | "ready" | "misconfigured"): Promise<Zone> {
    const statuses = ["unconfigured", "ready", "misconfigured"];
    if (!statuses.includes(status)) throw new ValidationError("status", `"${status}" is not one of ${statuses.join(", ")}`);
    const zone = await this.getZone(input);
    if (zone.status === status) return zone;
    const modified = this.#timestamp();
    await this.#change((trx) => trx.updateTable("zones").set({ status, modified_at: modified }).where("id", "=", zone.id).execute());
    return { ...zone, status, modified };
  }

  async removeZone(input: string): Promise<Zone> {
    const zone = await this.getZone(input);
    await this.#change(async (trx) => {
      // Explicit deletes rather than relying on cascades: SQLite enforces them only per connection setting.
      await trx.deleteFrom("rules").where("zone_id", "=", zone.id).execute();
      await trx.deleteFrom("catch_alls").where("zone_id", "=", zone.id).execute();
      await trx.deleteFrom("zones").where("id", "=", zone.id).execute();
    });
    return zone;
  }

  // ── destination addresses ───────────────────────────────────────────────

  static destinationEmail(input: string, field = "email"): { email: string; key: string } {
    const parsed = parseDestinationAddress(String(input ?? ""));
    if (parsed === null) throw new ValidationError(field, `"${input}" is not an email address`);
    return { email: `${parsed.local}@${parsed.domain}`, key: parsed.key };
  }

  async addDestination(input: string, options: { verified?: boolean } = {}): Promise<DestinationAddress> {
    const { email, key } = RoutingService.destinationEmail(input);
    const existing = await this.#db.selectFrom("destination_addresses").select("id").where("account_id", "=", this.#account).where("email_key", "=", key).executeTakeFirst();
    if (existing !== undefined) throw new ValidationError("email", `${email} is already a destination address`, "conflict");
    const now = this.#timestamp();
    const row = { id: newId(), account_id: this.#account, email, email_key: key, verified_at: options.verified ? now : null, created_at: now, modified_at: now };
    await this.#change((trx) => trx.insertInto("destination_addresses").values(row).execute());
    return { id: row.id, email, verified: row.verified_at, created: now, modified: now };
  }

  async listDestinations(): Promise<DestinationAddress[]> {
    const rows = await this.#db.selectFrom("destination_addresses").selectAll().where("account_id", "=", this.#account).orderBy("email_key").execute();
    return rows.map((row) => ({ id: row.id, email: row.email, verified: row.verified_at, created: row.created_at, modified: row.modified_at }));
  }

  async #destinationRow(input: string) {
    const { email, key } = RoutingService.destinationEmail(input);
    const row = await this.#db.selectFrom("destination_addresses").selectAll().where("account_id", "=", this.#account).where("email_key", "=", key).executeTakeFirst();
    if (row === undefined) throw new ValidationError("email", `${email} is not a destination address; add it with "mailroute address add ${email}"`, "not_found");
    return row;
  }

  async verifyDestination(input: string): Promise<DestinationAddress> {
    const row = await this.#destinationRow(input);
    const now = this.#timestamp();
    const verified = row.verified_at ?? now;
    await this.#change((trx) => trx.updateTable("destination_addresses").set({ verified_at: verified, modified_at: now }).where("id", "=", row.id).execute());
    return { id: row.id, email: row.email, verified, created: row.created_at, modified: now };
  }

  async removeDestination(input: string): Promise<DestinationAddress> {
    const row = await this.#destinationRow(input);
    await this.#change((trx) => trx.deleteFrom("destination_addresses").where("id", "=", row.id).execute());
    return { id: row.id, email: row.email, verified: row.verified_at, created: row.created_at, modified: row.modified_at };
  }

  // ── rules ───────────────────────────────────────────────────────────────

  /** Split a custom address into its zone and local part, validating both. */
  async #ruleTarget(input: string, field = "matchers[0].value"): Promise<{ zone: Zone; local: string; matchKey: string; address: string }> {
    const parsed = parseAddress(String(input ?? ""));
    if (isAddressProblem(parsed)) throw new ValidationError(field, `"${input}" is not a usable custom address (${parsed.detail})`);
    const zone = await this.getZone(parsed.domain, field);
    return { zone, local: parsed.local, matchKey: ruleMatchKey(zone, parsed.local), address: `${parsed.local}@${zone.name}` };
  }

  async addRule(address: string, actions: CloudflareAction[], options: { name?: string; enabled?: boolean; priority?: number } = {}): Promise<Rule> {
    const target = await this.#ruleTarget(address);
    const action = toRuleAction(actions);
    const existing = await this.#db.selectFrom("rules").select("id").where("zone_id", "=", target.zone.id).where("match_key", "=", target.matchKey).executeTakeFirst();
    if (existing !== undefined) throw new ValidationError("matchers[0].value", `a rule for ${target.address} already exists; remove it first or edit it`, "conflict");
    const priority = options.priority ?? 0;
    if (!Number.isInteger(priority) || priority < 0) throw new ValidationError("priority", "must be a non-negative integer");
    const now = this.#timestamp();
    const row: RuleTable = {
      id: newId(),
      zone_id: target.zone.id,
      name: options.name?.trim() || `Rule for ${target.address}`,
      enabled: options.enabled === false ? 0 : 1,
      priority,
      match_key: target.matchKey,
      matchers: JSON.stringify([{ type: "literal", field: "to", value: target.address }]),
      actions: JSON.stringify(fromRuleAction(action)),
      created_at: now,
      modified_at: now,
    };
    await this.#change((trx) => trx.insertInto("rules").values(row).execute());
    return toRule(row, target.zone.name);
  }

  async listRules(domain?: string): Promise<Rule[]> {
    let query = this.#db
      .selectFrom("rules")
      .innerJoin("zones", "zones.id", "rules.zone_id")
      .selectAll("rules")
      .select("zones.name as zone_name")
      .where("zones.account_id", "=", this.#account);
    if (domain !== undefined) query = query.where("zones.name", "=", (await this.getZone(domain)).name);
    const rows = await query.orderBy("zones.name").orderBy("rules.match_key").execute();
    return rows.map((row) => toRule(row, row.zone_name));
  }

  async getRule(address: string): Promise<Rule> {
    const target = await this.#ruleTarget(address, "address");
    const row = await this.#db.selectFrom("rules").selectAll().where("zone_id", "=", target.zone.id).where("match_key", "=", target.matchKey).executeTakeFirst();
    if (row === undefined) throw new ValidationError("address", `there is no rule for ${target.address}`, "not_found");
    return toRule(row, target.zone.name);
  }

  async setRuleEnabled(address: string, enabled: boolean): Promise<Rule> {
    const rule = await this.getRule(address);
    await this.#change((trx) => trx.updateTable("rules").set({ enabled: enabled ? 1 : 0, modified_at: this.#timestamp() }).where("id", "=", rule.id).execute());
    return { ...rule, enabled };
  }

  async removeRule(address: string): Promise<Rule> {
    const rule = await this.getRule(address);
    await this.#change((trx) => trx.deleteFrom("rules").where("id", "=", rule.id).execute());
    return rule;
  }

  // ── catch-all ───────────────────────────────────────────────────────────

  async setCatchAll(domain: string, setting: { actions: CloudflareAction[] } | { disabled: true }): Promise<CatchAll> {
    const zone = await this.getZone(domain);
    const current = await this.#db.selectFrom("catch_alls").selectAll().where("zone_id", "=", zone.id).executeTakeFirst();
    const now = this.#timestamp();
    let actionsJson: string;
    let enabled: number;
    if ("disabled" in setting) {
      actionsJson = current?.actions ?? JSON.stringify([{ type: "drop" }]);
      enabled = 0;
    } else {
      actionsJson = JSON.stringify(fromRuleAction(toRuleAction(setting.actions)));
      enabled = 1;
    }
    const row = { zone_id: zone.id, name: `Catch-all for ${zone.name}`, enabled, actions: actionsJson, modified_at: now };
    await this.#change(async (trx) => {
      if (current === undefined) await trx.insertInto("catch_alls").values(row).execute();
      else await trx.updateTable("catch_alls").set(row).where("zone_id", "=", zone.id).execute();
    });
    const actions = JSON.parse(actionsJson) as CloudflareAction[];
    return { zone: zone.name, name: row.name, enabled: enabled === 1, actions, action: toRuleAction(actions), modified: now };
  }

  async getCatchAll(domain: string): Promise<CatchAll | null> {
    const zone = await this.getZone(domain);
    const row = await this.#db.selectFrom("catch_alls").selectAll().where("zone_id", "=", zone.id).executeTakeFirst();
    if (row === undefined) return null;
    const actions = JSON.parse(row.actions) as CloudflareAction[];
    return { zone: zone.name, name: row.name, enabled: row.enabled === 1, actions, action: toRuleAction(actions), modified: row.modified_at };
  }
}

/** The stored lookup key of a rule; must agree with routing's localKey(). */
export function ruleMatchKey(zone: Pick<Zone, "name" | "dotInsensitive">, local: string): string {
  const lower = local.toLowerCase();
  return `${zone.dotInsensitive ? lower.replaceAll(".", "") : lower}@${zone.name}`;
}
