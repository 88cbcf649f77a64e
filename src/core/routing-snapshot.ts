/**
 * Loads the whole routing configuration from the store into an immutable RoutingTable, and
 * keeps a live copy fresh: RoutingConfigWatcher polls the configuration version (one indexed
 * single-row read) and rebuilds only when it changed, so a CLI change reaches a running
 * server within one poll interval and routing itself never touches the database.
 */
import type { Kysely } from "kysely";
import { routingTableBuilder, type RoutingTable, type RuleInput, type ZoneInput } from "../routing/routing-table.ts";
import { readConfigVersion } from "../store/config-version.ts";
import { listVerifiedAddressKeys } from "../store/repositories/address-repository.ts";
import { rulesForRouting, type RoutingRuleRow } from "../store/repositories/rule-repository.ts";
import { listAllCatchAlls, listAllZones } from "../store/repositories/zone-repository.ts";
import type { Database } from "../store/schema.ts";
import type { RuleAction } from "../routing/routing-table.ts";
import { toRuleAction, type CloudflareAction, type CloudflareMatcher } from "./rule-actions.ts";
import { zonePolicyOf } from "./zones/zone-service.ts";

// a table read while changes keep landing is read again at most this many times, then used as
// read (the watcher's next poll sees the newer version and reads it again anyway)
const MAX_READS = 5;

/**
 * The routing table as the store holds it. Rules are read in pages, so the configuration
 * version is read around them: a change committed meanwhile means the pages may disagree, and
 * the table is read again rather than used torn.
 */
export async function loadRoutingTable(db: Kysely<Database>, options: { pageSize?: number } = {}): Promise<RoutingTable> {
  for (let reads = 1; ; reads++) {
    const before = await readConfigVersion(db);
    const table = await readRoutingTable(db, options.pageSize);
    if (reads >= MAX_READS || (await readConfigVersion(db)) === before) return table;
  }
}

async function readRoutingTable(db: Kysely<Database>, pageSize: number | undefined): Promise<RoutingTable> {
  const [zoneRows, catchAllRows, verifiedRows] = await Promise.all([listAllZones(db), listAllCatchAlls(db), listVerifiedAddressKeys(db)]);
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
  // Rules share a handful of distinct actions (many addresses, few inboxes): each distinct text
  // is parsed once and its action shared, frozen, by every rule that has it. With a million
  // rules, parsing every row's actions (and matchers) was most of the start-up time and memory.
  const actions = new Map<string, RuleAction>();
  const actionOf = (text: string): RuleAction => {
    let action = actions.get(text);
    if (action === undefined) {
      action = deepFreeze(toRuleAction(JSON.parse(text) as CloudflareAction[]));
      actions.set(text, action);
    }
    return action;
  };
  const zoneNames = new Map(zoneRows.map((zone) => [zone.id, zone.name]));
  const dotInsensitive = new Set(zoneRows.filter((zone) => zone.dot_insensitive === 1).map((zone) => zone.id));
  // The configured local part. match_key holds it normalised as the zone was when the rule was
  // made (lower case, dots dropped in a dot-insensitive zone); the table normalises it as the
  // zone is now, which gives the same key unless the zone stopped being dot-insensitive since
  // and dots were dropped: only a match_key that could be such a one sends us to the matcher,
  // and only when the matcher's text does not show it verbatim (a JSON string starting with the
  // very same local part and its "@": then nothing was dropped).
  const localOf = (row: RoutingRuleRow): string => {
    const local = row.match_key.slice(0, row.match_key.lastIndexOf("@"));
    if (dotInsensitive.has(row.zone_id) || local.includes(".") || row.matchers.includes(`"${local}@`)) return local;
    const address = (JSON.parse(row.matchers) as CloudflareMatcher[])[0]?.value ?? row.match_key;
    return address.slice(0, address.lastIndexOf("@"));
  };
  const builder = routingTableBuilder({ zones, verifiedDestinations: verifiedRows.map((row) => ({ account: row.account_id, email: row.email_key })) });
  for await (const page of rulesForRouting(db, pageSize)) {
    for (const row of page) {
      // a rule of a zone made after the zones were read: the version check reads the table again
      const zone = zoneNames.get(row.zone_id);
      if (zone === undefined) continue;
      const rule: RuleInput = { id: row.id, name: row.name, enabled: row.enabled === 1, zone, local: localOf(row), action: actionOf(row.actions) };
      if (row.delivery_mode === "queue" || row.delivery_mode === "relay") rule.deliveryMode = row.delivery_mode;
      builder.add(rule);
    }
  }
  return builder.finish();
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
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
