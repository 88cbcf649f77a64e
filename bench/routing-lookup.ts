/**
 * Routing resolution micro-benchmark: resolveRecipient over a table of 10 rules and one of
 * 100,000, with the same mix of lookups (80% exact rule, 10% sub-address of a rule, 10% unknown
 * recipient). An indexed table (routing-table.ts promises a constant number of hash lookups)
 * shows a ratio near 1; a scan would be thousands of times slower on the large one.
 * The large table is measured twice: with the small case's very addresses (only the rule count
 * differs) and with lookups spread over thousands of its rules, which adds CPU-cache misses
 * that any large in-memory index pays, so the two effects are not confused.
 *
 * Promises: pure CPU in this process, no I/O; bounded in time (rounds × roundMs per case);
 * the cases take turns round by round so a noisy neighbour slows all alike, and the median
 * round is reported. The decisions are checked before timing, so a table that silently routes
 * nothing cannot look fast.
 */
import { performance } from "node:perf_hooks";
import { resolveRecipient } from "../src/routing/resolve-recipient.ts";
import { buildRoutingTable, type RoutingTable, type RuleInput } from "../src/routing/routing-table.ts";

export interface LookupFigures {
  label: string;
  rules: number;
  /** Distinct rules the lookups hit. */
  distinctRulesHit: number;
  buildMs: number;
  opsPerSecond: number;
  /** Each round's ops/s, in the order run. */
  roundsOpsPerSecond: number[];
}

export interface RoutingLookupResult {
  small: LookupFigures;
  /** The large table, looked up with exactly the small case's addresses: only the rule count differs. */
  largeSameAddresses: LookupFigures;
  /** The large table, lookups spread over thousands of its rules: adds CPU-cache misses. */
  largeSpread: LookupFigures;
  /** largeSameAddresses ÷ small ops/s: 1.0 means the rule count does not matter at all. */
  ratioSameAddresses: number;
  /** largeSpread ÷ small ops/s. */
  ratioSpread: number;
  queryMix: string;
}

const ZONE = "bench.test";
const DESTINATION = "inbox@sink.test";
const QUERIES = 4096;

function tableWith(ruleCount: number): { table: RoutingTable; buildMs: number } {
  const rules: RuleInput[] = [];
  for (let i = 0; i < ruleCount; i++) {
    rules.push({ id: `r${i}`, name: `Rule for user${i}@${ZONE}`, zone: ZONE, local: `user${i}`, enabled: true, action: { type: "forward", chains: [[DESTINATION]] } });
  }
  const started = performance.now();
  const table = buildRoutingTable({
    zones: [{ name: ZONE, enabled: true, supportSubaddress: true, dotInsensitive: false, catchAll: null }],
    rules,
    verifiedDestinations: [DESTINATION],
  });
  return { table, buildMs: performance.now() - started };
}

/** The same shape of workload for any spread; rule indexes cycle over the first `spread` rules. */
function queriesFor(spread: number): { addresses: string[]; expectedRoutes: number; distinct: number } {
  const addresses: string[] = [];
  const hit = new Set<number>();
  let expectedRoutes = 0;
  for (let i = 0; i < QUERIES; i++) {
    if (i % 10 === 0) addresses.push(`nobody${i}@${ZONE}`);
    else {
      // 7919 is prime, so coprime with 10 and 100,000: successive hits stride across the whole
      // range instead of clustering, and every rule in range is reached before any repeats
      const rule = (expectedRoutes * 7919) % spread;
      // mixed case on purpose: local parts compare case-insensitively (DESIGN §3)
      addresses.push(i % 10 === 1 ? `User${rule}+tag${i}@${ZONE}` : `user${rule}@${ZONE}`);
      hit.add(rule);
      expectedRoutes++;
    }
  }
  return { addresses, expectedRoutes, distinct: hit.size };
}

function checkDecisions(table: RoutingTable, addresses: readonly string[], expectedRoutes: number, rules: number): void {
  const routed = addresses.filter((address) => resolveRecipient(address, table).kind === "route").length;
  if (routed !== expectedRoutes) throw new Error(`routing table of ${rules} rules routed ${routed} of ${addresses.length} lookups, expected ${expectedRoutes}`);
}

/** Lookups per second over at least `ms`, checked in whole passes over the query list. */
function measure(table: RoutingTable, addresses: readonly string[], ms: number): number {
  let operations = 0;
  // consumed after the loop so the engine cannot drop the calls as dead code
  let checksum = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    for (const address of addresses) checksum += resolveRecipient(address, table).kind.length;
    operations += addresses.length;
    elapsed = performance.now() - started;
  } while (elapsed < ms);
  if (checksum === 0) throw new Error("no routing decisions were made");
  return (operations / elapsed) * 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function runRoutingLookup(options: { smallRules?: number; largeRules?: number; rounds?: number; roundMs?: number } = {}): RoutingLookupResult {
  const rounds = options.rounds ?? 7;
  const roundMs = options.roundMs ?? 300;
  const smallRules = options.smallRules ?? 10;
  const largeRules = options.largeRules ?? 100_000;
  const small = tableWith(smallRules);
  const large = tableWith(largeRules);
  const cases = [
    { label: `${smallRules.toLocaleString("en-US")} rules`, rules: smallRules, built: small, queries: queriesFor(smallRules) },
    { label: `${largeRules.toLocaleString("en-US")} rules, same addresses`, rules: largeRules, built: large, queries: queriesFor(smallRules) },
    { label: `${largeRules.toLocaleString("en-US")} rules, spread lookups`, rules: largeRules, built: large, queries: queriesFor(largeRules) },
  ].map((entry) => {
    checkDecisions(entry.built.table, entry.queries.addresses, entry.queries.expectedRoutes, entry.rules);
    // warm-up: let the JIT optimise resolveRecipient before anything is timed
    measure(entry.built.table, entry.queries.addresses, Math.min(300, roundMs));
    return { ...entry, samples: [] as number[] };
  });
  for (let round = 0; round < rounds; round++) {
    // rotate the order each round, so no case always runs first (or right after a GC of another)
    for (let i = 0; i < cases.length; i++) {
      const entry = cases[(i + round) % cases.length]!;
      entry.samples.push(measure(entry.built.table, entry.queries.addresses, roundMs));
    }
  }
  const [smallFigures, sameFigures, spreadFigures] = cases.map((entry): LookupFigures => ({
    label: entry.label,
    rules: entry.rules,
    distinctRulesHit: entry.queries.distinct,
    buildMs: entry.built.buildMs,
    opsPerSecond: median(entry.samples),
    roundsOpsPerSecond: entry.samples,
  })) as [LookupFigures, LookupFigures, LookupFigures];
  return {
    small: smallFigures,
    largeSameAddresses: sameFigures,
    largeSpread: spreadFigures,
    ratioSameAddresses: sameFigures.opsPerSecond / smallFigures.opsPerSecond,
    ratioSpread: spreadFigures.opsPerSecond / smallFigures.opsPerSecond,
    queryMix: `${QUERIES} lookups per pass: 80% exact rule, 10% sub-address (User+tag), 10% unknown recipient`,
  };
}
