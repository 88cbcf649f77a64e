/**
 * `npm run bench:ledger`: what the delivery ledger costs per message, before and after the
 * delivery intent (issue 8 item 9), on a real SQLite file and the real PostgreSQL.
 *
 *   before: read the ledger, record the acceptance               (1 read, 1 write)
 *   after:  read ledger + intents (one query), claim the intent,
 *           record the acceptance                                 (1 read, 2 writes)
 *
 * Figures are store time per message with one destination, run in interleaved rounds (before,
 * after, before, …) so machine noise hits both alike; the ratio is the figure to read. In the
 * relay the claim runs while MAIL/RCPT/DATA are on the wire, so it adds to the database's load
 * more than to a message's latency (see `npm run bench` for end-to-end latency).
 * Prints figures, asserts nothing; bounded: ROUNDS × MESSAGES per variant and database.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { acceptedDestinations, claimDelivery, ledgerView, recordAccepted } from "../src/store/delivery-ledger-store.ts";
import { openStore, type Store } from "../src/store/open-store.ts";
import { forBenchDatabases, median } from "./bench-databases.ts";
import { formatTable } from "./report-table.ts";

const ROUNDS = 6;
const MESSAGES = 300;

type Variant = "before" | "after";

async function oneMessage(store: Store, variant: Variant): Promise<void> {
  const fingerprint = randomBytes(16).toString("hex");
  const destination = "inbox@dest.test";
  const now = new Date();
  if (variant === "before") {
    await acceptedDestinations(store.db, fingerprint, now);
  } else {
    await ledgerView(store.db, fingerprint, now);
    await claimDelivery(store.db, { fingerprint, destination, attemptId: randomBytes(8).toString("hex"), now, settlesAt: new Date(now.getTime() + 242_000), ttlDays: 7 });
  }
  await recordAccepted(store.db, { fingerprint, destination, upstreamReply: "250 2.0.0 Ok", now, ttlDays: 7 });
}

async function measure(store: Store): Promise<Record<Variant, number[]>> {
  const perMessageUs: Record<Variant, number[]> = { before: [], after: [] };
  for (let warm = 0; warm < 50; warm++) await oneMessage(store, warm % 2 === 0 ? "before" : "after");
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of ["before", "after"] as const) {
      const started = performance.now();
      for (let index = 0; index < MESSAGES; index++) await oneMessage(store, variant);
      perMessageUs[variant].push(((performance.now() - started) * 1000) / MESSAGES);
    }
  }
  return perMessageUs;
}

async function main(): Promise<void> {
  const rows: (string | number)[][] = [];
  await forBenchDatabases("mailroute-ledger-bench", { sqlite: "sqlite (WAL, synchronous=NORMAL)", postgres: "postgresql (local, synchronous_commit on)" }, async (label, options) => {
      process.stderr.write(`bench:ledger: ${label}\n`);
      const store = await openStore(options);
      try {
        const figures = await measure(store);
        const before = median(figures.before);
        const after = median(figures.after);
        rows.push([label, before.toFixed(0), after.toFixed(0), (after - before).toFixed(0), (after / before).toFixed(2)]);
      } finally {
        await store.close();
      }
  });
  process.stdout.write(
    formatTable(
      `Delivery ledger store time per message, one destination (median of ${ROUNDS} interleaved rounds of ${MESSAGES})`,
      [{ title: "database", align: "left" }, { title: "before µs" }, { title: "after µs" }, { title: "added µs" }, { title: "after/before" }],
      rows,
      ["before: read + record (1 write); after: read (ledger ∪ intents) + claim + record (2 writes).", "the claim overlaps the SMTP transaction in the relay; the record follows the destination's 250 as before."],
    ),
  );
}

await main();
