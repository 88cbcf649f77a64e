/**
 * Routing at scale for the side-by-side bench (issue 11: "1 M custom addresses: lookup p99 ≤
 * 0.1 ms, start-up ≤ 5 s"): a store holding `rules` literal custom addresses in one zone, then
 * - start-up: the real `mailroute start` (child process, the launcher's flags) from spawn to
 *   its SMTP greeting, the whole routing table loaded and built from the store on the way, and
 *   the same load (loadRoutingTable, the function the service runs) timed in this process;
 * - lookup: resolveRecipient, timed call by call, over addresses spread across all the rules
 *   (plus sub-addresses and unknown ones), p50/p99/max;
 * - one message for the last rule through the started service, relayed to the sink, so a
 *   table that routes nothing cannot look fast.
 *
 * The rules are bulk-inserted with SQL copied from a rule the service itself created (setup,
 * not measured), each with a random id as the service gives (ids in ascending order had let the
 * store read rules in id order at the speed of storage order, and hidden a ~6 s cost).
 * Bounded: one table, a fixed number of lookups.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { loadRoutingTable } from "../src/core/routing-snapshot.ts";
import { createServices } from "../src/core/services.ts";
import { resolveRecipient } from "../src/routing/resolve-recipient.ts";
import { openStore } from "../src/store/open-store.ts";
import { summarizeLatency, type LatencySummary } from "./latency-stats.ts";
import { startChildServer } from "./mailroute-server.ts";
import { fixedSizeMessages } from "./message-source.ts";
import { LoadSession } from "./smtp-load-client.ts";

const ZONE = "scale.test";
const DESTINATION = "inbox@sink.test";
// rows per INSERT: SQLite takes at most 32,766 bound values per statement
const INSERT_BATCH = 1000;
const LOOKUPS = 200_000;

export interface RoutingScaleFigures {
  rules: number;
  /** spawn → SMTP greeting of `mailroute start`, ms */
  startMs: number;
  /** loadRoutingTable over the store in this process, ms */
  loadMs: number;
  /** per-lookup time, ms */
  lookup: LatencySummary;
  /** the service's RSS once started, bytes */
  startedRssBytes: number | null;
  /** the service's answer to a message for the last rule (relayed to the sink) */
  rcptReply: string;
}

const local = (index: number) => `user${index}`;

export async function measureRoutingScale(options: { rules: number; dnsAddress: string; sinkPort: number; progress: (text: string) => void }): Promise<RoutingScaleFigures> {
  const dataDir = mkdtempSync(join(tmpdir(), "mailroute-bench-routing-"));
  try {
    const store = await openStore({ dataDir });
    try {
      const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
      // sub-addressing on, so the user+tag lookups are routed too
      await config.zones.create(ZONE, { supportSubaddress: true });
      await config.addresses.create(DESTINATION, { verified: true });
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: `${local(0)}@${ZONE}` }], actions: [{ type: "forward", value: [DESTINATION] }] });
      const template = await store.db.selectFrom("rules").selectAll().executeTakeFirstOrThrow();
      options.progress(`routing at scale: inserting ${options.rules.toLocaleString("en")} rules`);
      for (let start = 1; start < options.rules; start += INSERT_BATCH) {
        const rows = [];
        for (let index = start; index < Math.min(options.rules, start + INSERT_BATCH); index++) {
          const address = `${local(index)}@${ZONE}`;
          rows.push({ ...template, id: randomBytes(16).toString("hex"), match_key: address, matchers: JSON.stringify([{ type: "literal", field: "to", value: address }]), priority: index });
        }
        await store.db.insertInto("rules").values(rows).execute();
      }
      const loadStarted = performance.now();
      const table = await loadRoutingTable(store.db);
      const loadMs = performance.now() - loadStarted;
      // lookups spread over every rule: 80 % exact, 10 % sub-address, 10 % unknown
      const samples: number[] = [];
      let routed = 0;
      for (let index = 0; index < LOOKUPS; index++) {
        const rule = (index * 7919) % options.rules;
        const kind = index % 10;
        const address = kind === 8 ? `${local(rule)}+tag@${ZONE}` : kind === 9 ? `nobody${index}@${ZONE}` : `${local(rule)}@${ZONE}`;
        const started = performance.now();
        const decision = resolveRecipient(address, table);
        samples.push(performance.now() - started);
        if (decision.kind === "route") routed++;
      }
      // exact and sub-addressed lookups route, unknown ones do not: anything else is a broken table
      if (routed !== LOOKUPS - LOOKUPS / 10) throw new Error(`routing at scale: ${routed} of ${LOOKUPS} lookups routed, expected ${LOOKUPS - LOOKUPS / 10}`);
      const lookup = summarizeLatency(samples);
      await store.close().catch(() => undefined);
      options.progress("routing at scale: starting mailroute on the large store");
      const spawned = performance.now();
      const server = await startChildServer({ dataDir, dnsAddress: options.dnsAddress, sinkPort: options.sinkPort, hostname: "mx.mailroute.test" });
      const startMs = performance.now() - spawned;
      try {
        const startedRssBytes = await server.rss();
        const session = await LoadSession.open({ host: "127.0.0.1", port: server.port, timeoutMs: 30_000 });
        let rcptReply: string;
        try {
          const to = `${local(options.rules - 1)}@${ZONE}`;
          const result = await session.send({ from: "sender@origin.test", to }, fixedSizeMessages(1024, to).next());
          rcptReply = result.reply.line;
          if (!result.ok) throw new Error(`routing at scale: the last rule's message was refused: ${result.reply.line}`);
        } finally {
          await session.quit().catch(() => session.destroy());
        }
        return { rules: options.rules, startMs, loadMs, lookup, startedRssBytes, rcptReply };
      } finally {
        await server.stop();
      }
    } finally {
      await store.close().catch(() => undefined);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
