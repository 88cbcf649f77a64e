/**
 * Loads the whole routing configuration from the store into an immutable RoutingTable, and
 * keeps a live copy fresh: RoutingConfigWatcher polls the configuration version (one indexed
 * single-row read) and rebuilds only when it changed, so a CLI change reaches a running
 * server within one poll interval and routing itself never touches the database.
 */
import type { Kysely } from "kysely";
import { buildRoutingTable, type RoutingTable, type RuleInput, type ZoneInput } from "../routing/routing-table.ts";
import { readConfigVersion } from "../store/config-version.ts";
import { listVerifiedAddressKeys } from "../store/repositories/address-repository.ts";
import { listAllRulesForRouting } from "../store/repositories/rule-repository.ts";
import { listAllCatchAlls, listAllZones } from "../store/repositories/zone-repository.ts";
import type { Database } from "../store/schema.ts";
import { toRuleAction, type CloudflareAction, type CloudflareMatcher } from "./rule-actions.ts";
import { zonePolicyOf } from "./zones/zone-service.ts";

export async function loadRoutingTable(db: Kysely<Database>): Promise<RoutingTable> {
  const [zoneRows, catchAllRows, ruleRows, verifiedRows] = await Promise.all([listAllZones(db), listAllCatchAlls(db), listAllRulesForRouting(db), listVerifiedAddressKeys(db)]);
  const catchAlls = new Map(catchAllRows.map((row) => [row.zone_id, row]));
  const zones: ZoneInput[] = zoneRows.map((zone) => {
    const catchAll = catchAlls.get(zone.id);
    return {
      name: zone.name,
      account: zone.account_id,
      enabled: zone.enabled === 1,
      supportSubaddress: zone.support_subaddress === 1,
      dotInsensitive: zone.dot_insensitive === 1,
      policy: zonePolicyOf(zone),
      catchAll:
        catchAll === undefined
          ? null
          : { id: `catch-all:${zone.id}`, name: catchAll.name, enabled: catchAll.enabled === 1, action: toRuleAction(JSON.parse(catchAll.actions) as CloudflareAction[]) },
    };
  });
  const rules: RuleInput[] = ruleRows.map((row) => {
    const matcher = (JSON.parse(row.matchers) as CloudflareMatcher[])[0];
    const address = matcher?.value ?? row.match_key;
    return {
      id: row.id,
      name: row.name,
      enabled: row.enabled === 1,
      zone: row.zone_name,
      local: address.slice(0, address.lastIndexOf("@")),
      action: toRuleAction(JSON.parse(row.actions) as CloudflareAction[]),
      ...(row.delivery_mode === "queue" || row.delivery_mode === "relay" ? { deliveryMode: row.delivery_mode } : {}),
    };
  });
  return buildRoutingTable({ zones, rules, verifiedDestinations: verifiedRows.map((row) => ({ account: row.account_id, email: row.email_key })) });
}

export interface RoutingConfigWatcherOptions {
  intervalMs?: number;
  onReload?: (version: number, table: RoutingTable) => void;
  onError?: (error: unknown) => void;
}

export class RoutingConfigWatcher {
  readonly #db: Kysely<Database>;
  readonly #options: RoutingConfigWatcherOptions;
  #table: RoutingTable | null = null;
  #version = -1;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  readonly #listeners = new Set<(version: number, table: RoutingTable) => void>();

  constructor(db: Kysely<Database>, options: RoutingConfigWatcherOptions = {}) {
    this.#db = db;
    this.#options = options;
  }

  get table(): RoutingTable {
    if (this.#table === null) throw new Error("routing configuration not loaded yet: call start() first");
    return this.#table;
  }

  get version(): number {
    return this.#version;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh().catch((error) => this.#options.onError?.(error)), this.#options.intervalMs ?? 250);
    this.#timer.unref();
  }

  /** Reload now if the version changed (also used by tests and by in-process changes). */
  refresh(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = null;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const version = await readConfigVersion(this.#db);
    if (version === this.#version && this.#table !== null) return;
    const table = await loadRoutingTable(this.#db);
    this.#table = table;
    this.#version = version;
    this.#options.onReload?.(version, table);
    for (const listener of this.#listeners) listener(version, table);
  }

  /** Calls `listener` after every reload (a configuration change anywhere); returns the unsubscribe. */
  onChange(listener: (version: number, table: RoutingTable) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
