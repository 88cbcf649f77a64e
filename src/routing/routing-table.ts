/**
 * The in-memory routing table: every zone, rule and verified destination, indexed so that
 * resolving a recipient is a constant number of hash lookups however many rules exist.
 * Built from plain data (the store's snapshot) and immutable once built; a configuration
 * change builds a new table and swaps it in. Pure.
 */
import type { DestinationChains } from "./destination-expression.ts";
import { normalizeDomain } from "./email-address.ts";
import { ruleIndexBuilder } from "./rule-index.ts";

export type RuleAction =
  | { type: "forward"; chains: DestinationChains }
  | { type: "drop" }
  | { type: "reject"; reason: string }
  | { type: "worker"; script: string };

export interface RouteEntry {
  id: string;
  name: string;
  enabled: boolean;
  action: RuleAction;
  /** The rule's own delivery mode; absent: the zone's. */
  deliveryMode?: DeliveryMode;
}

/** Policy of a zone: inbound authentication (every switch relaxes or tightens one check) and outbound signing. */
export interface ZonePolicy {
  enforceDmarc: boolean;
  requireAuth: boolean;
  rejectQuarantine: boolean;
  /** Refuse mail scoring above this (0–5); null never refuses on score alone. */
  spamThreshold: number | null;
  /**
   * DKIM-sign and ARC-seal forwarded copies for this zone. Off only for a zone that forwards
   * to the operator's own server (--transport), where our signature serves no one.
   */
  signOutbound: boolean;
  /**
   * "relay": in-session only (DESIGN §4, the default). "queue": when a destination defers,
   * the message is stored durably and retried, and the sender hears 250 (issue 13).
   */
  deliveryMode: DeliveryMode;
}

export type DeliveryMode = "relay" | "queue";
export const DELIVERY_MODES: readonly DeliveryMode[] = Object.freeze(["relay", "queue"]);

export const DEFAULT_ZONE_POLICY: Readonly<ZonePolicy> = Object.freeze({ enforceDmarc: true, requireAuth: true, rejectQuarantine: false, spamThreshold: null, signOutbound: true, deliveryMode: "relay" });

export interface ZoneInput {
  name: string;
  /** The account the zone belongs to: its rules see only that account's verified destinations and workers. */
  account?: string;
  enabled: boolean;
  supportSubaddress: boolean;
  dotInsensitive: boolean;
  catchAll: RouteEntry | null;
  policy?: ZonePolicy;
}

export interface RuleInput extends RouteEntry {
  zone: string;
  /** Local part of the matched address (as configured). */
  local: string;
}

export interface RoutingInput {
  zones: readonly ZoneInput[];
  rules: readonly RuleInput[];
  /** Plain addresses (the default account's) or `{account, email}` pairs. */
  verifiedDestinations: readonly (string | { account: string; email: string })[];
}

/** The account of zones and destinations given without one (single-account installations, tests). */
export const DEFAULT_ROUTING_ACCOUNT = "default";

export interface RoutingZone {
  readonly name: string;
  readonly account: string;
  readonly enabled: boolean;
  readonly supportSubaddress: boolean;
  readonly dotInsensitive: boolean;
  readonly catchAll: RouteEntry | null;
  readonly policy: Readonly<ZonePolicy>;
}

export interface RoutingTable {
  readonly zones: ReadonlyMap<string, RoutingZone>;
  /** Keyed by `localKey(zone, local)@zone`; compact (rule-index.ts): entries are equal per key, not identical. */
  readonly rules: ReadonlyMap<string, RouteEntry>;
  /** Verified destination addresses (lower-case) per account: one account's verification never activates another's rule. */
  readonly verified: ReadonlyMap<string, ReadonlySet<string>>;
}

const NO_ADDRESSES: ReadonlySet<string> = new Set();

/** The verified destinations of one account. */
export function verifiedFor(table: RoutingTable, account: string): ReadonlySet<string> {
  return table.verified.get(account) ?? NO_ADDRESSES;
}

/** The comparison form of a local part within a zone. */
export function localKey(zone: Pick<RoutingZone, "dotInsensitive">, local: string): string {
  const lower = local.toLowerCase();
  // Gmail-style zones: "j.doe" and "jdoe" are one mailbox.
  return zone.dotInsensitive ? lower.replaceAll(".", "") : lower;
}

export function buildRoutingTable(input: RoutingInput): RoutingTable {
  const builder = routingTableBuilder(input);
  for (const rule of input.rules) builder.add(rule);
  return builder.finish();
}

export interface RoutingTableBuilder {
  add(rule: RuleInput): void;
  finish(): RoutingTable;
}

/**
 * buildRoutingTable one rule at a time: a caller reading a million rules from the store adds
 * each as it comes, so neither the rows nor the RuleInputs outlive their page (they die young
 * instead of being promoted and collected with the table; issue 11, start-up).
 */
export function routingTableBuilder(input: Omit<RoutingInput, "rules">): RoutingTableBuilder {
  const zones = new Map<string, RoutingZone>();
  for (const zone of input.zones) {
    const name = normalizeDomain(zone.name);
    if (name === null) continue;
    zones.set(name, Object.freeze({ ...zone, name, account: zone.account ?? DEFAULT_ROUTING_ACCOUNT, policy: Object.freeze({ ...(zone.policy ?? DEFAULT_ZONE_POLICY) }) }));
  }
  const rules = ruleIndexBuilder();
  // each rule names its zone as text: normalised once per distinct text, not once per rule
  const zoneOf = new Map<string, RoutingZone | undefined>();
  return {
    add(rule) {
      let zone = zoneOf.get(rule.zone);
      if (!zoneOf.has(rule.zone)) {
        const zoneName = normalizeDomain(rule.zone);
        zone = zoneName === null ? undefined : zones.get(zoneName);
        zoneOf.set(rule.zone, zone);
      }
      if (zone === undefined) return;
      rules.set(`${localKey(zone, rule.local)}@${zone.name}`, rule);
    },
    finish() {
      const verified = new Map<string, Set<string>>();
      for (const entry of input.verifiedDestinations) {
        const { account, email } = typeof entry === "string" ? { account: DEFAULT_ROUTING_ACCOUNT, email: entry } : entry;
        let set = verified.get(account);
        if (set === undefined) verified.set(account, (set = new Set()));
        set.add(email.toLowerCase());
      }
      return Object.freeze({ zones, rules: rules.finish(), verified });
    },
  };
}

export const EMPTY_ROUTING_TABLE: RoutingTable = buildRoutingTable({ zones: [], rules: [], verifiedDestinations: [] });
