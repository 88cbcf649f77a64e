/**
 * Queue mode under failure (issue 13), with real `mailroute start` processes: a zone in queue
 * mode, a destination that answers 451 for a while, and the node SIGKILLed while it holds
 * claims on queued messages (mid-retry), then started again on the same data directory or
 * database. On SQLite and on PostgreSQL: every message the sender got 250 for is delivered
 * exactly once, none lost; a restarted node takes its dead process's claims back at once. On
 * PostgreSQL, with two nodes sharing the queue, the survivor takes over the killed node's
 * claims once they lapse (relay timeout + margin), before the killed node is back. And in cluster mode the DSN after --queue-max-age reaches the sender once.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { startFlakySink, type FlakySink, type SinkVerdict } from "../support/flaky-sink.ts";
import { createTestDatabase, type TestDatabase } from "../support/postgres-database.ts";
import { startProcessCluster, type ProcessCluster } from "../support/process-cluster.ts";
import { sendUntilAnswered } from "../support/retrying-sender.ts";
import { testMessage } from "../support/smtp-test-client.ts";
import { CLAIM_MARGIN_MS } from "../../src/mail/queue-runner.ts";

// a claim lasts the relay timeout + 30 s: the shortest relay timeout that still leaves the
// (delayed) retries room keeps the takeover wait near half a minute
const RELAY_TIMEOUT_MS = 1500;
const MESSAGES = 20;
const QUEUE_FLAGS = { "queue-min-backoff": "300", "queue-max-backoff": "1000", "queue-poll": "200", "relay-timeout": String(RELAY_TIMEOUT_MS) };

/** Polls until `check` holds; bounded in rounds and time; throws naming what it waited for. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; round < 10_000; round++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface Setup {
  dns: TestDnsServer;
  sink: FlakySink;
  database: TestDatabase | null;
  dataDirs: string[];
  openStore(): Promise<Store>;
}

async function configure(setup: Setup, maxAgeRule: boolean): Promise<void> {
  const store = await setup.openStore();
  try {
    const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
    await config.zones.create("queue.test");
    await config.zones.update("queue.test", { deliveryMode: "queue" });
    await config.addresses.create("one@a.test", { verified: true });
    await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "q@queue.test" }], actions: [{ type: "forward", value: ["one@a.test"] }] });
    if (maxAgeRule) {
      await config.addresses.create("bob@a.test", { verified: true });
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "never@queue.test" }], actions: [{ type: "forward", value: ["bob@a.test"] }] });
    }
  } finally {
    await store.close();
  }
}

async function prepare(backend: "sqlite" | "postgres", nodes: number, decide: (rcpt: string, id: string) => SinkVerdict, rcptDelayMs: () => number): Promise<Setup> {
  const dns = await startDnsServer();
  const sink = await startFlakySink({ decide, rcptDelayMs });
  for (const domain of ["a.test", "origin.test"]) {
    dns.setRecords(domain, "MX", [{ exchange: `mx.${domain}`, priority: 10 }]);
    dns.setRecords(`mx.${domain}`, "A", ["127.0.0.1"]);
  }
  const database = backend === "postgres" ? await createTestDatabase() : null;
  const dataDirs = Array.from({ length: nodes }, (_, n) => mkdtempSync(join(tmpdir(), `mailroute-queue-crash-${n}-`)));
  return {
    dns,
    sink,
    database,
    dataDirs,
    openStore: () => (database === null ? openStore({ dataDir: dataDirs[0]! }) : openStore({ dataDir: "/nonexistent/unused-with-postgres", databaseUrl: database.url })),
  };
}

for (const backend of ["sqlite", "postgres"] as const) {
  const names = backend === "sqlite" ? ["node-a"] : ["node-a", "node-b"];
  describe(`queue mode on ${backend}: ${names.length === 1 ? "the node" : "one of two nodes"} SIGKILLed while retrying`, () => {
    let setup: Setup;
    let cluster: ProcessCluster;
    // the destination defers everything until the kill, then each message once more, then accepts
    let phase: "deferring" | "recovering" = "deferring";
    const deferredAfterKill = new Set<string>();

    before(async () => {
      setup = await prepare(
        backend,
        names.length,
        (rcpt, id) => {
          if (rcpt !== "one@a.test" || phase === "deferring") return "tempfail";
          if (deferredAfterKill.has(id)) return "accept";
          deferredAfterKill.add(id);
          return "tempfail";
        },
        // retries are slow while deferring, so the runner holds its claims long enough to be caught
        () => (phase === "deferring" ? 300 : 0),
      );
      await configure(setup, false);
      cluster = await startProcessCluster({
        names,
        databaseUrl: setup.database?.url ?? null,
        dataDirs: setup.dataDirs,
        flags: { "dns-servers": setup.dns.address, "outbound-port": String(setup.sink.port), "queue-max-age": "600000", ...QUEUE_FLAGS },
      });
    });

    after(async () => {
      await cluster?.stop();
      await setup?.sink.stop();
      await setup?.dns.stop();
      await setup?.database?.drop();
    });

    it("delivers every message the sender got 250 for exactly once after the kill and restart, none lost", { timeout: 90_000 }, async () => {
      const victim = cluster.nodes[0]!;
      const survivor = cluster.nodes[1] ?? null;
      const ports = cluster.nodes.map((node) => node.port);
      const messages = Array.from({ length: MESSAGES }, (_, n) => `<queued-${backend}-${n}@origin.test>`);
      const replies = await Promise.all(
        messages.map((messageId, n) => sendUntilAnswered({ ports, first: n, from: "sender@origin.test", rcpt: "q@queue.test", raw: testMessage({ messageId, to: "q@queue.test" }), maxAttempts: 5 })),
      );
      for (const attempts of replies) assert.match(attempts.at(-1)!.reply!.line, /^250 .*1 deferred destination\(s\) will be retried/);

      // mid-retry: the victim holds claims (its runner is in a pass, waiting on the slow RCPT)
      const store = await setup.openStore();
      try {
        const claimedByVictim = () => store.db.selectFrom("queued_messages").select(["id", "message_id", "claim_expires_at"]).where("claimed_by", "=", "node-a").where("claim_expires_at", "is not", null).execute();
        // first the runner's retries are answered 451 at least once, then one finds node-a in a pass
        await until("a retry from the queue answered 451", () => setup.sink.verdicts.tempfail > MESSAGES, 20_000);
        // a claim made in the last 100 ms: its retry waits on the 300 ms RCPT for a while yet, so
        // the kill lands mid-retry (a claim seen just as its retry ends may be gone by the kill)
        const freshlyClaimed = async () => {
          const since = new Date(Date.now() + RELAY_TIMEOUT_MS + CLAIM_MARGIN_MS - 100).toISOString();
          return (await claimedByVictim()).some((row) => row.claim_expires_at! >= since);
        };
        await until("node-a to claim queued messages for a retry", freshlyClaimed, 20_000);
        assert.ok(victim.killNow(), "node-a was serving when killed");
        await victim.exited;
        const orphanedRows = await claimedByVictim();
        const orphaned = orphanedRows.map((row) => row.id);
        const queued = await store.db.selectFrom("queued_messages").select("id").execute();
        assert.equal(queued.length, MESSAGES, "every accepted message is still queued after the kill");
        assert.ok(orphaned.length > 0);
        assert.equal(setup.sink.copies.length, 0, "nothing delivered before the kill");
        phase = "recovering";

        if (survivor !== null) {
          // the other node takes the killed node's claims over once they lapse, without it
          const queueEmpty = async () => (await store.db.selectFrom("queued_messages").select("id").execute()).length === 0;
          await until("node-b to deliver everything, node-a's claimed messages included", queueEmpty, 60_000);
          // a runner logs queue_done after the removal is committed, and the line crosses a pipe:
          // the queue can be seen empty a moment before the last line arrives
          const doneByB = () => new Set(survivor.logs.filter((line) => line.event === "queue_done").map((line) => String(line["queue_id"])));
          await until("node-b's queue_done lines", () => orphaned.every((id) => doneByB().has(id)), 5_000).catch(() => undefined);
          for (const id of orphaned) assert.ok(doneByB().has(id), `node-b finished ${id}, which node-a had claimed`);
        }
        await victim.start();
        await until("every message delivered", () => setup.sink.copies.length >= MESSAGES, 60_000);
        await until("the queue to empty", async () => (await store.db.selectFrom("queued_messages").select("id").execute()).length === 0, 60_000);
        if (survivor === null) {
          // restarted, the node takes back at once what its killed process had claimed
          for (const row of orphanedRows) {
            const [copy] = setup.sink.copiesOf(row.message_id!, "one@a.test");
            assert.ok(copy !== undefined && copy.acceptedAt < Date.parse(row.claim_expires_at!), `${row.message_id} delivered before its old claim lapsed`);
          }
        }
        // more passes on every node change nothing: the entries are gone and the ledger holds
        await sleep(1000);
        for (const messageId of messages) assert.equal(setup.sink.copiesOf(messageId, "one@a.test").length, 1, `${messageId}: one copy`);
        assert.equal(setup.sink.copies.length, MESSAGES);
        console.log(JSON.stringify({ event: "queue_crash", backend, messages: MESSAGES, orphaned: orphaned.length, delivered: setup.sink.copies.length, verdicts: setup.sink.verdicts }));
      } finally {
        await store.close();
      }
    });
  });
}

describe("queue mode on PostgreSQL with two nodes: a DSN after the maximum age", () => {
  let setup: Setup;
  let cluster: ProcessCluster;

  before(async () => {
    setup = await prepare("postgres", 2, (rcpt) => (rcpt === "bob@a.test" ? "tempfail" : "accept"), () => 0);
    await configure(setup, true);
    cluster = await startProcessCluster({
      names: ["node-a", "node-b"],
      databaseUrl: setup.database!.url,
      dataDirs: setup.dataDirs,
      flags: { "dns-servers": setup.dns.address, "outbound-port": String(setup.sink.port), "queue-max-age": "2000", ...QUEUE_FLAGS },
    });
  });

  after(async () => {
    await cluster?.stop();
    await setup?.sink.stop();
    await setup?.dns.stop();
    await setup?.database?.drop();
  });

  it("reaches the original sender once, not once per node", { timeout: 60_000 }, async () => {
    const ports = cluster.nodes.map((node) => node.port);
    const attempts = await sendUntilAnswered({ ports, from: "sender@origin.test", rcpt: "never@queue.test", raw: testMessage({ to: "never@queue.test" }), maxAttempts: 5 });
    assert.match(attempts.at(-1)!.reply!.line, /^250 /);
    const dsns = () => setup.sink.copies.filter((copy) => copy.rcpt === "sender@origin.test");
    await until("the DSN", () => dsns().length > 0, 30_000);
    // both nodes keep polling the queue: several more passes each
    await sleep(2000);
    assert.equal(dsns().length, 1, "one DSN");
    const store = await setup.openStore();
    try {
      assert.equal((await store.db.selectFrom("queued_messages").select("id").execute()).length, 0);
    } finally {
      await store.close();
    }
  });
});

describe("queue mode on sqlite: the node SIGKILLed between the destination's 451 and its 250 to the sender", () => {
  const SWEEP = 8;
  let setup: Setup;
  let cluster: ProcessCluster;
  // message id → ms after the in-session 451 at which the node is killed
  const killAfter = new Map<string, number>();

  before(async () => {
    setup = await prepare(
      "sqlite",
      1,
      (rcpt, id) => {
        const delay = killAfter.get(id);
        if (rcpt !== "one@a.test" || delay === undefined) return "accept";
        killAfter.delete(id);
        // the 451 is written right after this returns; the kill lands while the node stores the
        // copy, or after it stored it and before the sender heard 250 — the sweep covers both
        setTimeout(() => cluster.nodes[0]!.killNow(), delay);
        return "tempfail";
      },
      () => 0,
    );
    await configure(setup, false);
    cluster = await startProcessCluster({
      names: ["node-a"],
      databaseUrl: null,
      dataDirs: setup.dataDirs,
      flags: { "dns-servers": setup.dns.address, "outbound-port": String(setup.sink.port), "queue-max-age": "600000", ...QUEUE_FLAGS },
    });
  });

  after(async () => {
    await cluster?.stop();
    await setup?.sink.stop();
    await setup?.dns.stop();
  });

  it("delivers each message once, whether the killed node had stored it, answered it, or neither", { timeout: 90_000 }, async () => {
    const node = cluster.nodes[0]!;
    const outcomes = { lost_before_store: 0, stored_unanswered: 0, answered_250: 0 };
    // per message, what happened to it, for the failure message: a duplicate here is the
    // no-duplicate promise broken, and CI once saw one (message 5) that never came back alone
    const timeline = new Map<number, string[]>();
    const mark = (n: number, what: string) => timeline.set(n, [...(timeline.get(n) ?? []), `${new Date().toISOString()} ${what}`]);
    const store = await setup.openStore();
    try {
      for (let n = 0; n < SWEEP; n++) {
        const messageId = `<kill-before-250-${n}@origin.test>`;
        killAfter.set(messageId, n);
        const raw = testMessage({ messageId, to: "q@queue.test" });
        const first = await sendUntilAnswered({ ports: [node.port], from: "sender@origin.test", rcpt: "q@queue.test", raw, maxAttempts: 1 }).catch((error: Error) => {
          mark(n, `first attempt: ${error.message}`);
          return null;
        });
        if (first !== null) mark(n, `first attempt: ${first.at(-1)!.reply!.line}`);
        await node.exited;
        const stored = (await store.db.selectFrom("queued_messages").select("id").where("message_id", "=", messageId).execute()).length > 0;
        mark(n, `killed; stored: ${stored}`);
        await node.start();
        mark(n, "restarted");
        if (first !== null) {
          // the 250 beat the kill: the message is the queue's now, and it was stored
          assert.match(first.at(-1)!.reply!.line, /^250 .*1 deferred destination\(s\) will be retried/);
          assert.ok(stored, "a message answered 250 was stored before the answer");
          outcomes.answered_250++;
          continue;
        }
        outcomes[stored ? "stored_unanswered" : "lost_before_store"]++;
        // the sender retries the message it never heard 250 for; the destination accepts now
        const retry = await sendUntilAnswered({ ports: [node.port], from: "sender@origin.test", rcpt: "q@queue.test", raw, maxAttempts: 20 });
        for (const attempt of retry) mark(n, `retry: ${attempt.reply?.line ?? attempt.error}`);
        assert.equal(retry.at(-1)!.reply!.code, 250);
      }
      // the copies stored before a kill are retried from the queue too: the ledger stops them
      await until("the queue to empty", async () => (await store.db.selectFrom("queued_messages").select("id").execute()).length === 0, 30_000);
      for (let n = 0; n < SWEEP; n++) {
        const messageId = `<kill-before-250-${n}@origin.test>`;
        const copies = setup.sink.copiesOf(messageId, "one@a.test");
        if (copies.length === 1) continue;
        const events = await store.db.selectFrom("events").select(["received_at", "session_id", "outcome", "reply_code", "detail"]).where("message_id", "=", messageId).orderBy("id").execute();
        const told = [...(timeline.get(n) ?? []), ...copies.map((copy) => `${new Date(copy.acceptedAt).toISOString()} the sink accepted a copy`), ...events.map((event) => `${event.received_at} event: ${JSON.stringify(event)}`)];
        assert.equal(copies.length, 1, `message ${n}: one copy\n${told.sort().join("\n")}`);
      }
      console.log(JSON.stringify({ event: "queue_kill_before_250", messages: SWEEP, ...outcomes, copies: setup.sink.copies.length }));
    } finally {
      await store.close();
    }
  });
});
