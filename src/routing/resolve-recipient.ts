/**
 * resolveRecipient: what happens to mail for one envelope recipient (DESIGN §3).
 *
 * Precedence for `local+detail@domain`:
 *   1. an enabled rule for the exact address `local+detail@domain`;
 *   2. when the zone supports sub-addressing, an enabled rule for `local@domain`;
 *   3. the zone's catch-all, if enabled;
 *   4. otherwise the recipient is unknown (refused at RCPT TO, never bounced later).
 * A matching rule whose destinations are not all verified is inactive: it refuses rather than
 * falling through, so mail meant for a configured address never lands in the catch-all.
 * Domains that are not zones are refused as relaying. Pure function of (address, table).
 */
import { allDestinations } from "./destination-expression.ts";
import { isAddressProblem, parseAddress, splitSubaddress } from "./email-address.ts";
import { DEFAULT_ROUTING_ACCOUNT, localKey, verifiedFor, type DeliveryMode, type RouteEntry, type RoutingTable, type RuleAction } from "./routing-table.ts";

export type RefusalReason =
  | "syntax"
  | "routing-trick"
  | "relay-denied"
  | "zone-disabled"
  | "unknown-recipient"
  | "rule-inactive";

export type RoutingDecision =
  | { kind: "refuse"; reason: RefusalReason; detail: string; domain: string | null }
  | {
      kind: "route";
      address: string;
      zone: string;
      matched: "exact" | "subaddress-base" | "catch-all";
      ruleId: string;
      ruleName: string;
      action: RuleAction;
      /** The rule's own delivery mode, when it has one (else the zone's applies). */
      deliveryMode?: DeliveryMode;
    };

function refuse(reason: RefusalReason, detail: string, domain: string | null = null): RoutingDecision {
  return { kind: "refuse", reason, detail, domain };
}

/** Destinations of a forward action that are not verified (empty for other actions). */
export function unverifiedDestinations(action: RuleAction, verified: ReadonlySet<string>): string[] {
  if (action.type !== "forward") return [];
  return allDestinations(action.chains).filter((address) => !verified.has(address.toLowerCase()));
}

export function resolveRecipient(address: string, table: RoutingTable): RoutingDecision {
  const parsed = parseAddress(address);
  if (isAddressProblem(parsed)) {
    return refuse(parsed.problem === "syntax" ? "syntax" : "routing-trick", parsed.detail);
  }
  const zone = table.zones.get(parsed.domain);
  if (zone === undefined) return refuse("relay-denied", `${parsed.domain} is not a domain routed here`, parsed.domain);
  if (!zone.enabled) return refuse("zone-disabled", `email routing is disabled for ${zone.name}`, zone.name);

  const candidates: { matched: "exact" | "subaddress-base"; entry: RouteEntry | undefined }[] = [
    { matched: "exact", entry: table.rules.get(`${localKey(zone, parsed.local)}@${zone.name}`) },
  ];
  if (zone.supportSubaddress) {
    const { base, detail } = splitSubaddress(parsed.local);
    if (detail !== null) candidates.push({ matched: "subaddress-base", entry: table.rules.get(`${localKey(zone, base)}@${zone.name}`) });
  }
  for (const { matched, entry } of candidates) {
    if (entry === undefined || !entry.enabled) continue;
    return routeTo(entry, matched, parsed.local, zone.name, table);
  }
  if (zone.catchAll !== null && zone.catchAll.enabled) {
    return routeTo(zone.catchAll, "catch-all", parsed.local, zone.name, table);
  }
  return refuse("unknown-recipient", `no route for ${parsed.local}@${zone.name}`, zone.name);
}

function routeTo(
  entry: RouteEntry,
  matched: "exact" | "subaddress-base" | "catch-all",
  local: string,
  zone: string,
  table: RoutingTable,
): RoutingDecision {
  const missing = unverifiedDestinations(entry.action, verifiedFor(table, table.zones.get(zone)?.account ?? DEFAULT_ROUTING_ACCOUNT));
  if (missing.length > 0) {
    return refuse("rule-inactive", `rule "${entry.name}" is inactive: destination ${missing.join(", ")} not verified`, zone);
  }
  return { kind: "route", address: `${local}@${zone}`, zone, matched, ruleId: entry.id, ruleName: entry.name, action: entry.action, ...(entry.deliveryMode !== undefined ? { deliveryMode: entry.deliveryMode } : {}) };
}

/**
 * Two recipients can share one SMTP transaction only when what happens to the message is the
 * same for both (DESIGN §4: one reply after DATA must be true for every recipient).
 */
export function planKey(decision: RoutingDecision & { kind: "route" }): string {
  const action = decision.action;
  switch (action.type) {
    case "forward":
      return `forward:${action.chains.map((chain) => chain.map((a) => a.toLowerCase()).join(":")).join(",")}`;
    case "drop":
      return "drop";
    case "reject":
      return `reject:${action.reason}`;
    case "worker":
      // A worker sees each recipient separately (message.to), so each is its own plan.
      return `worker:${action.script}:${decision.address.toLowerCase()}`;
  }
}
