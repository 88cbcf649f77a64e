/**
 * Routing resolution micro-benchmark: resolveRecipient over a table of 10 rules and one of
 * 100,000, with the same mix of lookups (80% exact rule, 10% sub-address of a rule, 10% unknown
 * recipient). An indexed table (routing-table.ts promises a constant number of hash lookups)
 * shows a ratio near 1; a scan would be thousands of times slower on the large one.
 *
 * Promises: pure CPU in this process, no I/O; bounded in time (rounds × roundMs per table);
 * rounds alternate between the tables so a noisy neighbour slows both alike, and the median
 * round is reported. The decisions are checked before timing, so a table that silently routes
 * nothing cannot look fast.
 */
import { performance } from "node:perf_hooks";
import { resolveRecipient } from "../src/routing/resolve-recipient.ts";
import { buildRoutingTable, type RoutingTable, type RuleInput } from "../src/routing/routing-table.ts";

export interface LookupFigures {
  rules: number;
  buildMs: number;
  opsPerSecond: number;
  /** Each round's ops/s, in the order run. */
  roundsOpsPerSecond: number[];
}

export interface RoutingLookupResult {
  small: LookupFigures;
  large: LookupFigures;
  /** large ÷ small ops/s: 1.0 means the rule count does not matter at all. */
  ratio: number;
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

/** The same shape of workload for any table size; rule indexes spread over the whole table. */
function queriesFor(ruleCount: number): { addresses: string[]; expectedRoutes: number } {
  const addresses: string[] = [];
  let expectedRoutes = 0;
  for (let i = 0; i < QUERIES; i++) {
    const rule = (i * 7919) % ruleCount;
    if (i % 10 === 0) addresses.push(`nobody${i}@${ZONE}`);
    else {
      addresses.push(i % 10 === 1 ? `User${rule}+tag${i}@${ZONE}` : `user${rule}@${ZONE}`);
      expectedRoutes++;
    }
  }
  return { addresses, expectedRoutes };
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
  const rounds = options.rounds ?? 5;
  const roundMs = options.roundMs ?? 400;
  const sizes = [options.smallRules ?? 10, options.largeRules ?? 100_000] as const;
  const cases = sizes.map((rules) => {
    const { table, buildMs } = tableWith(rules);
    const { addresses, expectedRoutes } = queriesFor(rules);
    checkDecisions(table, addresses, expectedRoutes, rules);
    // warm-up: let the JIT optimise resolveRecipient before anything is timed
    measure(table, addresses, Math.min(300, roundMs));
    return { rules, table, addresses, buildMs, samples: [] as number[] };
  });
  for (let round = 0; round < rounds; round++) {
    for (const entry of round % 2 === 0 ? cases : [...cases].reverse()) entry.samples.push(measure(entry.table, entry.addresses, roundMs));
  }
  const [small, large] = cases.map((entry): LookupFigures => ({
    rules: entry.rules,
    buildMs: entry.buildMs,
    opsPerSecond: median(entry.samples),
    roundsOpsPerSecond: entry.samples,
  })) as [LookupFigures, LookupFigures];
  return { small, large, ratio: large.opsPerSecond / small.opsPerSecond, queryMix: "80% exact rule, 10% sub-address (user+tag), 10% unknown recipient" };
}
