/**
 * Routing rules (custom addresses) of one account, in Cloudflare's shape: one literal `to`
 * matcher and one action. A rule is named by id (API) or by its address (CLI). Each rule
 * reports whether it is active and, if not, why (an unverified or deleted destination, a
 * worker that is not deployed), so no front end has to work that out again.
 *
 * Promises: nothing invalid is stored; one rule per address and zone; another account's
 * rule is "not found".
 */
import type { Kysely, Selectable, Updateable } from "kysely";
import { allDestinations } from "../../routing/destination-expression.ts";
import { isAddressProblem, parseAddress } from "../../routing/email-address.ts";
import { DELIVERY_MODES, type DeliveryMode, type RuleAction } from "../../routing/routing-table.ts";
import { listAddresses } from "../../store/repositories/address-repository.ts";
import * as rules from "../../store/repositories/rule-repository.ts";
import type { RuleRow } from "../../store/repositories/rule-repository.ts";
import type { Database, RuleTable } from "../../store/schema.ts";
import { pageWindow, type Page, type PageRequest } from "../paging.ts";
import { fromRuleAction, toRuleAction, type CloudflareAction, type CloudflareMatcher } from "../rule-actions.ts";
import { newId, type ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";
import { refuseUndeployedWorker, type DeployedWorkers, type UndeployedWorkerOption } from "../workers/deployed-worker-check.ts";
import { findZone, type Zone, toZone } from "../zones/zone-service.ts";

export interface Rule {
  id: string;
  zoneId: string;
  zone: string;
  name: string;
  enabled: boolean;
  priority: number;
  matchers: CloudflareMatcher[];
  actions: CloudflareAction[];
  action: RuleAction;
  /** Why mail for this rule is refused although it is enabled; empty when it is live. */
  inactiveReasons: string[];
  source: string;
  ownerWorkerTag: string | null;
  /** The rule's own delivery mode; null follows its zone's. */
  deliveryMode: DeliveryMode | null;
  created: string;
  modified: string;
}

export interface RuleInput {
  matchers?: unknown;
  actions?: unknown;
  name?: unknown;
  enabled?: unknown;
  priority?: unknown;
  /** "api" (default) or "wrangler": who manages the rule (wrangler's `addresses` reconciliation). */
  source?: unknown;
  owner_worker_tag?: unknown;
  /** mailroute extension: "relay", "queue", or null to follow the zone. */
  delivery_mode?: unknown;
}

/** The stored lookup key of a rule; must agree with routing's localKey(). */
export function ruleMatchKey(zone: Pick<Zone, "name" | "dotInsensitive">, local: string): string {
  const lower = local.toLowerCase();
  return `${zone.dotInsensitive ? lower.replaceAll(".", "") : lower}@${zone.name}`;
}

/** What the account has that decides whether a rule is live. */
export interface ActivityFacts {
  verified: ReadonlySet<string>;
  known: ReadonlySet<string>;
  workers: ReadonlySet<string> | null;
}

export function inactiveReasons(action: RuleAction, facts: ActivityFacts): string[] {
  if (action.type === "worker") {
    return facts.workers !== null && !facts.workers.has(action.script.toLowerCase()) ? [`worker "${action.script}" is not deployed`] : [];
  }
  if (action.type !== "forward") return [];
  return allDestinations(action.chains).flatMap((address) => {
    const key = address.toLowerCase();
    if (facts.verified.has(key)) return [];
    return [facts.known.has(key) ? `destination ${address} is not verified` : `destination ${address} is not a destination address (deleted or never added)`];
  });
}

function toRule(row: Pick<RuleRow, keyof RuleTable | "zone_name">, facts: ActivityFacts | null): Rule {
  const extra = { source: row.source, ownerWorkerTag: row.owner_worker_tag, deliveryMode: row.delivery_mode === "queue" || row.delivery_mode === "relay" ? (row.delivery_mode as DeliveryMode) : null };
  const actions = JSON.parse(row.actions) as CloudflareAction[];
  const action = toRuleAction(actions);
  return {
    id: row.id,
    zoneId: row.zone_id,
    zone: row.zone_name,
    name: row.name,
    enabled: row.enabled === 1,
    priority: row.priority,
    matchers: JSON.parse(row.matchers) as CloudflareMatcher[],
    actions,
    action,
    inactiveReasons: facts === null ? [] : inactiveReasons(action, facts),
    ...extra,
    created: row.created_at,
    modified: row.modified_at,
  };
}

function deliveryModeOf(value: unknown): DeliveryMode | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || !(DELIVERY_MODES as readonly string[]).includes(value)) throw new ValidationError("delivery_mode", `must be one of ${DELIVERY_MODES.join(", ")}, or null to follow the zone`);
  return value as DeliveryMode;
}

function bool(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new ValidationError(field, "must be true or false");
  return value;
}

function priorityOf(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) throw new ValidationError("priority", "must be a whole number from 0");
  return value;
}

function sourceOf(value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (value !== "api" && value !== "wrangler") throw new ValidationError("source", `"${String(value)}" is not api or wrangler`);
  return value;
}

function ownerTagOf(value: unknown, fallback: string | null): string | null {
  if (value === undefined) return fallback;
  if (value !== null && (typeof value !== "string" || value.length > 64)) throw new ValidationError("owner_worker_tag", "must be a worker tag (a string of at most 64 characters) or null");
  return value;
}

function nameOf(value: unknown, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string") throw new ValidationError("name", "must be a string");
  if (value.length > 256) throw new ValidationError("name", "must be at most 256 characters");
  return value.trim() || fallback;
}

/** The custom address a rule's matchers name. */
function matchedAddress(matchers: unknown): string {
  if (!Array.isArray(matchers) || matchers.length !== 1) throw new ValidationError("matchers", "exactly one matcher is required: [{\"type\":\"literal\",\"field\":\"to\",\"value\":\"you@example.com\"}]", "required");
  const matcher = matchers[0] as Record<string, unknown> | null;
  if (matcher === null || typeof matcher !== "object") throw new ValidationError("matchers[0]", "must be an object");
  if (matcher["type"] === "all") throw new ValidationError("matchers[0].type", "\"all\" matches only in the catch-all rule (PUT …/rules/catch_all)");
  if (matcher["type"] !== "literal") throw new ValidationError("matchers[0].type", `"${String(matcher["type"])}" is not supported (expected "literal")`);
  if (matcher["field"] !== "to") throw new ValidationError("matchers[0].field", `"${String(matcher["field"])}" is not supported (expected "to")`);
  if (typeof matcher["value"] !== "string") throw new ValidationError("matchers[0].value", "must be the custom address, e.g. you@example.com", "required");
  return matcher["value"];
}

function actionsOf(value: unknown): CloudflareAction[] {
  if (!Array.isArray(value)) throw new ValidationError("actions", "must be a list with one action", "required");
  value.forEach((action, index) => {
    if (action === null || typeof action !== "object") throw new ValidationError(`actions[${index}]`, "must be an object");
    const { type, value: values } = action as Record<string, unknown>;
    if (typeof type !== "string") throw new ValidationError(`actions[${index}].type`, "must be a string", "required");
    if (values !== undefined && (!Array.isArray(values) || values.some((v) => typeof v !== "string"))) throw new ValidationError(`actions[${index}].value`, "must be a list of strings");
  });
  return value as CloudflareAction[];
}

export class RuleService {
  readonly #ctx: ServiceContext;
  readonly #deployedWorkers: DeployedWorkers;

  constructor(ctx: ServiceContext, deployedWorkers: DeployedWorkers) {
    this.#ctx = ctx;
    this.#deployedWorkers = deployedWorkers;
  }

  async #facts(db: Kysely<Database> = this.#ctx.db): Promise<ActivityFacts> {
    const rows = await listAddresses(db, { account: this.#ctx.scope.account });
    return {
      verified: new Set(rows.filter((row) => row.verified_at !== null).map((row) => row.email_key)),
      known: new Set(rows.map((row) => row.email_key)),
      workers: await this.#deployedWorkers(db),
    };
  }

  async #target(db: Kysely<Database>, input: string, field: string, zoneRef?: string): Promise<{ zone: Zone; local: string; matchKey: string; address: string }> {
    const parsed = parseAddress(String(input ?? ""));
    if (isAddressProblem(parsed)) throw new ValidationError(field, `"${input}" is not a usable custom address (${parsed.detail})`);
    const zone = toZone(await findZone(db, this.#ctx.scope.account, parsed.domain, field));
    if (zoneRef !== undefined) {
      const expected = toZone(await findZone(db, this.#ctx.scope.account, zoneRef));
      if (expected.id !== zone.id) throw new ValidationError(field, `${input} is not an address of ${expected.name}`);
    }
    return { zone, local: parsed.local, matchKey: ruleMatchKey(zone, parsed.local), address: `${parsed.local}@${zone.name}` };
  }

  async #find(db: Kysely<Database>, ref: string, field = "rule"): Promise<RuleRow> {
    const text = String(ref ?? "").trim();
    if (text.includes("@")) {
      const target = await this.#target(db, text, field);
      const row = await rules.findRuleByMatchKey(db, target.zone.id, target.matchKey);
      if (row === undefined) throw new ValidationError(field, `there is no rule for ${target.address}`, "not_found");
      return { ...row, zone_name: target.zone.name, account_id: this.#ctx.scope.account };
    }
    const row = await rules.findRuleById(db, this.#ctx.scope.account, text);
    if (row === undefined) throw new ValidationError(field, `rule "${text}" does not exist`, "not_found");
    return row;
  }

  async list(filter: { zone?: string; enabled?: boolean } = {}, paging?: PageRequest): Promise<Page<Rule>> {
    const window = pageWindow(paging, { perPage: 20, maxPerPage: 50 });
    const zoneId = filter.zone === undefined ? undefined : (await findZone(this.#ctx.db, this.#ctx.scope.account, filter.zone)).id;
    const query = { account: this.#ctx.scope.account, zoneId, enabled: filter.enabled };
    const [rows, total, facts] = await Promise.all([rules.listRules(this.#ctx.db, query, window), rules.countRules(this.#ctx.db, query), this.#facts()]);
    return { items: rows.map((row) => toRule(row, facts)), page: window.page, perPage: window.perPage, totalCount: total };
  }

  async all(filter: { zone?: string } = {}): Promise<Rule[]> {
    const zoneId = filter.zone === undefined ? undefined : (await findZone(this.#ctx.db, this.#ctx.scope.account, filter.zone)).id;
    const [rows, facts] = await Promise.all([rules.listRules(this.#ctx.db, { account: this.#ctx.scope.account, zoneId }), this.#facts()]);
    return rows.map((row) => toRule(row, facts));
  }

  async get(ref: string, zoneRef?: string): Promise<Rule> {
    const row = await this.#find(this.#ctx.db, ref);
    if (zoneRef !== undefined && (await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef)).id !== row.zone_id) throw new ValidationError("rule", `rule "${ref}" does not exist`, "not_found");
    return toRule(row, await this.#facts());
  }

  /** Creates a rule from Cloudflare's body (`matchers`, `actions`, `name`, `enabled`, `priority`). */
  async create(input: RuleInput, zoneRef?: string, options: UndeployedWorkerOption = {}): Promise<Rule> {
    const rule = await this.#ctx.change({ action: "rule.create", resourceType: "rule" }, async (trx) => {
      const target = await this.#target(trx, matchedAddress(input.matchers), "matchers[0].value", zoneRef);
      const action = toRuleAction(actionsOf(input.actions));
      await refuseUndeployedWorker(trx, action, this.#deployedWorkers, options);
      if ((await rules.findRuleByMatchKey(trx, target.zone.id, target.matchKey)) !== undefined) {
        throw new ValidationError("matchers[0].value", `a rule for ${target.address} already exists; edit it instead`, "conflict");
      }
      const now = this.#ctx.timestamp();
      const row: Selectable<RuleTable> = {
        id: newId(),
        zone_id: target.zone.id,
        name: nameOf(input.name, `Rule for ${target.address}`),
        enabled: bool(input.enabled, "enabled", true) ? 1 : 0,
        priority: priorityOf(input.priority, 0),
        match_key: target.matchKey,
        matchers: JSON.stringify([{ type: "literal", field: "to", value: target.address }]),
        actions: JSON.stringify(fromRuleAction(action)),
        created_at: now,
        modified_at: now,
        source: sourceOf(input.source, "api"),
        owner_worker_tag: ownerTagOf(input.owner_worker_tag, null),
        delivery_mode: deliveryModeOf(input.delivery_mode),
      };
      await rules.insertRule(trx, row);
      const created = toRule({ ...row, zone_name: target.zone.name }, null);
      return { value: created, resourceId: row.id, zoneId: row.zone_id, after: created };
    });
    return this.get(rule.id);
  }

  /** Replaces a rule (Cloudflare's PUT): fields not given keep their value, except matchers/actions which are required. */
  async update(ref: string, input: RuleInput, zoneRef?: string, options: UndeployedWorkerOption = {}): Promise<Rule> {
    const updated = await this.#ctx.change({ action: "rule.update", resourceType: "rule" }, async (trx) => {
      const current = await this.#find(trx, ref);
      const before = toRule(current, null);
      if (zoneRef !== undefined && (await findZone(trx, this.#ctx.scope.account, zoneRef)).id !== current.zone_id) throw new ValidationError("rule", `rule "${ref}" does not exist`, "not_found");
      const patch: Updateable<RuleTable> & Partial<Selectable<RuleTable>> = { modified_at: this.#ctx.timestamp() };
      if (input.source !== undefined) patch.source = sourceOf(input.source, current.source);
      if (input.owner_worker_tag !== undefined) patch.owner_worker_tag = ownerTagOf(input.owner_worker_tag, current.owner_worker_tag);
      if (input.matchers !== undefined) {
        const target = await this.#target(trx, matchedAddress(input.matchers), "matchers[0].value", current.zone_id);
        const clash = await rules.findRuleByMatchKey(trx, target.zone.id, target.matchKey);
        if (clash !== undefined && clash.id !== current.id) throw new ValidationError("matchers[0].value", `a rule for ${target.address} already exists`, "conflict");
        patch.match_key = target.matchKey;
        patch.matchers = JSON.stringify([{ type: "literal", field: "to", value: target.address }]);
      }
      if (input.actions !== undefined) {
        const action = toRuleAction(actionsOf(input.actions));
        await refuseUndeployedWorker(trx, action, this.#deployedWorkers, options);
        patch.actions = JSON.stringify(fromRuleAction(action));
      }
      if (input.name !== undefined) patch.name = nameOf(input.name, current.name);
      if (input.enabled !== undefined) patch.enabled = bool(input.enabled, "enabled", true) ? 1 : 0;
      if (input.priority !== undefined) patch.priority = priorityOf(input.priority, current.priority);
      if (input.delivery_mode !== undefined) patch.delivery_mode = deliveryModeOf(input.delivery_mode);
      await rules.updateRule(trx, current.id, patch);
      const after = toRule({ ...current, ...patch }, null);
      return { value: after, resourceId: current.id, zoneId: current.zone_id, before, after };
    });
    return this.get(updated.id);
  }

  async setEnabled(ref: string, enabled: boolean): Promise<Rule> {
    return this.update(ref, { enabled });
  }

  async remove(ref: string, zoneRef?: string): Promise<Rule> {
    return this.#ctx.change({ action: "rule.delete", resourceType: "rule" }, async (trx) => {
      const row = await this.#find(trx, ref);
      if (zoneRef !== undefined && (await findZone(trx, this.#ctx.scope.account, zoneRef)).id !== row.zone_id) throw new ValidationError("rule", `rule "${ref}" does not exist`, "not_found");
      await rules.deleteRule(trx, row.id);
      const rule = toRule(row, null);
      return { value: rule, resourceId: row.id, zoneId: row.zone_id, before: rule };
    });
  }

  /** Rules of this account that forward to `email` (to say what removing it disables). */
  async usingDestination(email: string): Promise<{ id: string; name: string }[]> {
    const key = email.toLowerCase();
    const all = await rules.listRules(this.#ctx.db, { account: this.#ctx.scope.account });
    return all
      .map((row) => toRule(row, null))
      .filter((rule) => rule.action.type === "forward" && allDestinations(rule.action.chains).some((address) => address.toLowerCase() === key))
      .map((rule) => ({ id: rule.id, name: rule.name }));
  }
}
