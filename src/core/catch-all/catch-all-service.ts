/**
 * The catch-all of a zone: what happens to mail for addresses no rule matches. Cloudflare's
 * shape (`matchers: [{type: "all"}]`, one action, `enabled`). A zone without one has a
 * disabled drop catch-all, as on Cloudflare.
 */
import type { RuleAction } from "../../routing/routing-table.ts";
import * as zones from "../../store/repositories/zone-repository.ts";
import { fromRuleAction, toRuleAction, type CloudflareAction } from "../rule-actions.ts";
import type { ServiceContext } from "../service-context.ts";
import { ValidationError } from "../validation-error.ts";
import { refuseUndeployedWorker, type DeployedWorkers, type UndeployedWorkerOption } from "../workers/deployed-worker-check.ts";
import { findZone, toZone } from "../zones/zone-service.ts";

export interface CatchAll {
  /** Cloudflare's catch-all has an id of its own; ours is derived from the zone. */
  id: string;
  zoneId: string;
  zone: string;
  name: string;
  enabled: boolean;
  actions: CloudflareAction[];
  action: RuleAction;
  source: string;
  ownerWorkerTag: string | null;
  modified: string | null;
}

export interface CatchAllInput {
  actions?: unknown;
  matchers?: unknown;
  enabled?: unknown;
  name?: unknown;
  source?: unknown;
  owner_worker_tag?: unknown;
}

const DEFAULT_ACTIONS: CloudflareAction[] = [{ type: "drop" }];

export class CatchAllService {
  readonly #ctx: ServiceContext;
  readonly #deployedWorkers: DeployedWorkers;

  constructor(ctx: ServiceContext, deployedWorkers: DeployedWorkers) {
    this.#ctx = ctx;
    this.#deployedWorkers = deployedWorkers;
  }

  async get(zoneRef: string): Promise<CatchAll> {
    const zone = toZone(await findZone(this.#ctx.db, this.#ctx.scope.account, zoneRef));
    const row = await zones.findCatchAll(this.#ctx.db, zone.id);
    const actions = row === undefined ? DEFAULT_ACTIONS : (JSON.parse(row.actions) as CloudflareAction[]);
    return {
      id: `catchall${zone.id.slice(0, 24)}`,
      zoneId: zone.id,
      zone: zone.name,
      name: row?.name ?? `Catch-all for ${zone.name}`,
      enabled: row?.enabled === 1,
      actions,
      action: toRuleAction(actions),
      source: row?.source ?? "api",
      ownerWorkerTag: row?.owner_worker_tag ?? null,
      modified: row?.modified_at ?? null,
    };
  }

  /** Sets the catch-all; `actions` omitted keeps the current action (e.g. only disabling it). */
  async set(zoneRef: string, input: CatchAllInput, options: UndeployedWorkerOption = {}): Promise<CatchAll> {
    await this.#ctx.change({ action: "catch_all.update", resourceType: "catch_all" }, async (trx) => {
      const zone = toZone(await findZone(trx, this.#ctx.scope.account, zoneRef));
      const current = await zones.findCatchAll(trx, zone.id);
      if (input.matchers !== undefined) {
        const ok = Array.isArray(input.matchers) && input.matchers.length === 1 && (input.matchers[0] as { type?: unknown } | null)?.type === "all";
        if (!ok) throw new ValidationError("matchers", "the catch-all matches everything: [{\"type\":\"all\"}]");
      }
      if (input.enabled !== undefined && typeof input.enabled !== "boolean") throw new ValidationError("enabled", "must be true or false");
      if (input.name !== undefined && typeof input.name !== "string") throw new ValidationError("name", "must be a string");
      let actionsJson = current?.actions ?? JSON.stringify(DEFAULT_ACTIONS);
      if (input.actions !== undefined) {
        if (!Array.isArray(input.actions)) throw new ValidationError("actions", "must be a list with one action", "required");
        const action = toRuleAction(input.actions as CloudflareAction[]);
        await refuseUndeployedWorker(trx, action, this.#deployedWorkers, options);
        actionsJson = JSON.stringify(fromRuleAction(action));
      }
      const enabled = input.enabled === undefined ? (input.actions !== undefined ? true : current?.enabled === 1) : input.enabled;
      if (input.source !== undefined && input.source !== "api" && input.source !== "wrangler") throw new ValidationError("source", `"${String(input.source)}" is not api or wrangler`);
      if (input.owner_worker_tag !== undefined && input.owner_worker_tag !== null && typeof input.owner_worker_tag !== "string") throw new ValidationError("owner_worker_tag", "must be a string or null");
      const ownership = {
        source: (input.source as string | undefined) ?? current?.source ?? "api",
        owner_worker_tag: input.owner_worker_tag === undefined ? (current?.owner_worker_tag ?? null) : (input.owner_worker_tag as string | null),
      };
      const row = { ...ownership, zone_id: zone.id, name: (input.name as string | undefined)?.trim() || current?.name || `Catch-all for ${zone.name}`, enabled: enabled ? 1 : 0, actions: actionsJson, modified_at: this.#ctx.timestamp() };
      await zones.upsertCatchAll(trx, row, current !== undefined);
      return { value: undefined, resourceId: zone.id, zoneId: zone.id, before: current ?? null, after: row };
    });
    return this.get(zoneRef);
  }
}
