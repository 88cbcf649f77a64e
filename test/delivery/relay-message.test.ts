/**
 * relayMessage and the delivery intent, over real parts: the delivery stack sending real SMTP
 * to sinks on loopback (via a static route), and the ledger on a real SQLite file and the real
 * PostgreSQL. Database failures are real too: a trigger that refuses the write.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { queryObjects, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { it } from "node:test";
import { sql, type Kysely } from "kysely";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { createDeliveryStack, type DeliveryStack } from "../../src/delivery/delivery-stack.ts";
import { relayMessage, type DeliveryLedger, type LedgerView, type RelayOutcome } from "../../src/delivery/relay-message.ts";
import { replyForRelay } from "../../src/mail/dispatch-reply.ts";
import { claimDelivery, ledgerView, storeDeliveryLedger } from "../../src/store/delivery-ledger-store.ts";
import { PendingWrites } from "../../src/store/pending-writes.ts";
import type { Database } from "../../src/store/schema.ts";
import { startFlakySink, type FlakySink, type SinkVerdict } from "../support/flaky-sink.ts";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.ts";
import { forEachDatabase, type DatabaseTarget } from "../support/store-fixtures.ts";
import { testMessage } from "../support/smtp-test-client.ts";

const DESTINATION = "inbox@dest.test";
const DEADLINE_MS = 5000;

interface Bench {
  db: Kysely<Database>;
  logs: { event: string; [field: string]: unknown }[];
  /** `source` replaces the message stream the relay reads (by default `raw` in one chunk); `ledgerView`, the ledger's view read ahead. */
  relay(fingerprint: string, raw: string, source?: () => Readable, ledgerView?: Promise<LedgerView>): Promise<RelayOutcome>;
}

/** Wraps the real store ledger, e.g. to delay its claims (a slow disk, a busy database). */
type LedgerWrapper = (ledger: DeliveryLedger) => DeliveryLedger;

/** The ledger with `method`'s calls held until `allow()` (a slow disk, a busy database). */
function delayed(method: "claim" | "recordAccepted"): { wrap: LedgerWrapper; allow: () => void } {
  let allow!: () => void;
  const mayRun = new Promise<void>((resolve) => {
    allow = resolve;
  });
  return {
    allow,
    wrap: (ledger) => {
      const real = ledger[method].bind(ledger) as (...args: unknown[]) => Promise<unknown>;
      return {
        ...ledger,
        [method]: async (...args: unknown[]) => {
          await mayRun;
          return real(...args);
        },
      };
    },
  };
}

async function bench(target: DatabaseTarget, sinkPort: number, use: (bench: Bench) => Promise<void>, wrap: LedgerWrapper = (ledger) => ledger, deadlineMs = DEADLINE_MS, afterReply?: PendingWrites): Promise<void> {
  const { db } = await target.open();
  const logs: Bench["logs"] = [];
  const logger = createLogger({
    level: "debug",
    stream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(JSON.parse(chunk.toString("utf8")) as Bench["logs"][number]);
        callback();
      },
    }),
  });
  const stack: DeliveryStack = createDeliveryStack({
    hostname: "mx.mailroute.test",
    outboundPort: 25,
    transport: `dest.test=127.0.0.1:${sinkPort}`,
    dnsServers: [],
    caFile: null,
    client: { connectionTimeoutMs: 3000, greetingTimeoutMs: 3000, socketTimeoutMs: 5000 },
    logger,
  });
  const ledger = wrap(storeDeliveryLedger(db, { ttlDays: 7 }));
  try {
    await use({
      db,
      logs,
      relay: (fingerprint, raw, source, ledgerView) =>
        relayMessage(
          {
            chains: [[DESTINATION]],
            mailFrom: "bounce@mx.mailroute.test",
            fingerprint,
            size: raw.length,
            message: source ?? (() => Readable.from([Buffer.from(raw)])),
            ...(ledgerView === undefined ? {} : { ledgerView }),
            ...(afterReply === undefined ? {} : { afterReply }),
          },
          { send: stack.send, ledger, deadlineMs, logger },
        ),
    });
  } finally {
    await stack.close();
  }
}

async function withSmtpSink(use: (sink: SmtpSink) => Promise<void>): Promise<void> {
  const sink = await startSmtpSink();
  try {
    await use(sink);
  } finally {
    await sink.stop();
  }
}

async function withFlakySink(decide: (index: number) => SinkVerdict, use: (sink: FlakySink) => Promise<void>): Promise<void> {
  let index = 0;
  const sink = await startFlakySink({ decide: () => decide(index++) });
  try {
    await use(sink);
  } finally {
    await sink.stop();
  }
}

/** A real write failure: the database itself refuses inserts into `table`. */
async function refuseWrites(db: Kysely<Database>, dialect: "sqlite" | "postgres", table: "delivery_intents" | "delivery_ledger"): Promise<void> {
  if (dialect === "sqlite") {
    await sql`create trigger ${sql.raw(`refuse_${table}`)} before insert on ${sql.table(table)} begin select raise(abort, 'write refused by test trigger'); end`.execute(db);
    return;
  }
  await sql`create or replace function refuse_write() returns trigger language plpgsql as $$ begin raise exception 'write refused by test trigger'; end $$`.execute(db);
  await sql`create trigger ${sql.raw(`refuse_${table}`)} before insert on ${sql.table(table)} for each row execute function refuse_write()`.execute(db);
}

const fingerprint = () => `fp-${randomBytes(6).toString("hex")}`;

/** Live AbortSignals after a full collection: what the process still holds, not what it made. */
async function liveAbortSignals(): Promise<number> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  // two rounds with a turn between them: FinalizationRegistry callbacks run in between
  gc();
  await sleep(10);
  gc();
  return queryObjects(AbortSignal, { format: "count" });
}

forEachDatabase((target) => {
  it("leaves nothing alive behind a finished relay: no deadline signal or timer waits out the 240 s (issue 11, RSS)", async () => {
    const RELAYS = 60;
    await withSmtpSink(async (sink) => {
      await bench(
        target,
        sink.port,
        async ({ relay }) => {
          await relay(fingerprint(), testMessage({}));
          const before = await liveAbortSignals();
          for (let index = 0; index < RELAYS; index++) assert.equal((await relay(fingerprint(), testMessage({}))).status, "delivered");
          const grown = (await liveAbortSignals()) - before;
          // a handful may belong to pooled connections or the database driver; one per relay is the leak
          assert.ok(grown < RELAYS / 4, `${grown} AbortSignals still alive after ${RELAYS} finished relays`);
        },
        undefined,
        240_000,
      );
    });
  });

  it("streams the message while the intent is being written, but sends the final dot only once it is durable", async () => {
    const claims = delayed("claim");
    await withFlakySink(() => "accept", async (sink) => {
      await bench(
        target,
        sink.port,
        async ({ db, relay }) => {
          const id = fingerprint();
          const relaying = relay(id, testMessage({ body: "x".repeat(20_000) }));
          while (sink.dataStarted === 0) await sleep(10);
          // ample time for 20 kB on loopback: without the gate the dot, and the 250, would be here
          await sleep(400);
          assert.equal(sink.copies.length, 0, "the destination must not have the message before its intent is recorded");
          claims.allow();
          assert.equal((await relaying).status, "delivered");
          assert.equal(sink.copies.length, 1);
          assert.deepEqual((await ledgerView(db, id, new Date())).accepted, new Set([DESTINATION]));
        },
        claims.wrap,
      );
    });
  });

  // without the bound the relay would wait for the database forever: the timeout makes that a failure
  it("keeps to the relay deadline when the database does not answer the claim, and releases the claim once it lands", { timeout: 30_000 }, async () => {
    const claims = delayed("claim");
    let settled!: (outcome: string) => void;
    const settlement = new Promise<string>((resolve) => {
      settled = resolve;
    });
    const watchSettle: LedgerWrapper = (ledger) => {
      const slow = claims.wrap(ledger);
      return {
        ...slow,
        settle: async (...args) => {
          await ledger.settle(...args);
          settled(args[3]);
        },
      };
    };
    await withFlakySink(() => "accept", async (sink) => {
      await bench(
        target,
        sink.port,
        async ({ db, relay }) => {
          const id = fingerprint();
          // returns although the database has not answered (the claim is released only below)
          const outcome = await relay(id, testMessage());
          assert.equal(outcome.status, "temporary");
          assert.match(outcome.chains[0]!.attempts[0]!.reply, /^4\.4\.7 /);
          assert.equal(sink.copies.length, 0);
          claims.allow();
          assert.equal(await settlement, "not-sent");
          assert.deepEqual(await db.selectFrom("delivery_intents").selectAll().execute(), []);
          assert.equal((await relay(id, testMessage())).status, "delivered");
        },
        watchSettle,
        800,
      );
    });
  });

  it("tells the sender, in our words, that our own relay deadline ran out — never as the destination server's answer", { timeout: 30_000 }, async () => {
    await withSmtpSink(async (sink) => {
      sink.stallData(3000);
      await bench(
        target,
        sink.port,
        async ({ relay }) => {
          const outcome = await relay(fingerprint(), testMessage());
          assert.equal(outcome.status, "temporary");
          const attempt = outcome.chains[0]!.attempts.at(-1)!;
          assert.equal(attempt.local, "timed-out");
          assert.match(attempt.reply, /^4\.4\.7 delivery to .* timed out$/);
          const reply = replyForRelay(outcome, "Q1", "mx.mailroute.test");
          assert.deepEqual([reply.responseCode, reply.enhanced], [451, "4.4.7"]);
          assert.match(reply.text, /^mx\.mailroute\.test: forwarding timed out before the destination server answered/);
          assert.doesNotMatch(reply.text, /said|deferred by the destination server|127\.0\.0\.1|dest\.test/);
        },
        undefined,
        800,
      );
    });
  });

  it("stops the attempt before its dot when the ledger cannot record the intent: the destination stores nothing", async () => {
    await withSmtpSink(async (sink) => {
      await bench(target, sink.port, async ({ db, logs, relay }) => {
        await refuseWrites(db, target.label, "delivery_intents");
        const outcome = await relay(fingerprint(), testMessage());
        assert.equal(outcome.status, "temporary");
        assert.equal(outcome.chains[0]!.held, "ledger-unavailable");
        assert.ok(sink.connectionsSeen >= 1, "the transaction started while the intent was being written");
        assert.equal(sink.messages.length, 0, "no dot, no message");
        assert.ok(logs.some((line) => line.event === "ledger_claim_failed"));
        // the sender hears a local error, not the database's words
        const reply = replyForRelay(outcome, "Q1", "mx.mailroute.test");
        assert.equal(reply.responseCode, 451);
        assert.doesNotMatch(reply.line, /trigger|refused/);
      });
    });
  });

  it("abandons the attempt, without a dot, when the message source fails while it is read (a spool read error)", async () => {
    await withSmtpSink(async (sink) => {
      await bench(target, sink.port, async ({ relay }) => {
        const raw = testMessage();
        const failing = () =>
          new Readable({
            read() {
              this.push(Buffer.from(raw.slice(0, 40)));
              setImmediate(() => this.destroy(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" })));
            },
          });
        const outcome = await relay(fingerprint(), raw, failing);
        assert.equal(outcome.status, "temporary");
        assert.equal(sink.messages.length, 0, "no dot, no message");
      });
    });
  });

  it("lets go of the message source when the attempt is cut off before the source ended (the deadline)", { timeout: 30_000 }, async () => {
    await withSmtpSink(async (sink) => {
      let source: Readable | null = null;
      // a spool that never ends: only the relay deadline stops the attempt
      const endless = () => (source = new Readable({ read() {} }));
      await bench(
        target,
        sink.port,
        async ({ relay }) => {
          const outcome = await relay(fingerprint(), testMessage(), endless);
          assert.equal(outcome.status, "temporary");
          await sleep(50);
          assert.ok(source !== null && source.destroyed, "the source was destroyed (its file is closed)");
        },
        undefined,
        1000,
      );
    });
  });

  it("holds a second attempt of a message while the first is still delivering, so the destination gets one copy", async () => {
    await withSmtpSink(async (sink) => {
      sink.stallData(1500);
      await bench(target, sink.port, async ({ db, relay }) => {
        const id = fingerprint();
        const raw = testMessage();
        const first = relay(id, raw);
        while ((await ledgerView(db, id, new Date())).intents.size === 0) await sleep(20);
        const second = await relay(id, raw);
        assert.equal(second.status, "temporary");
        assert.equal(second.chains[0]!.held, "in-flight");
        const reply = replyForRelay(second, "Q2", "mx.mailroute.test");
        assert.equal(reply.responseCode, 451);
        assert.equal(reply.enhanced, "4.3.0");
        assert.match(reply.line, /forwarding held/);
        assert.equal((await first).status, "delivered");
        const third = await relay(id, raw);
        assert.equal(third.status, "delivered");
        assert.equal(third.chains[0]!.attempts[0]!.fromLedger, true);
        assert.equal(sink.messagesFor(DESTINATION).length, 1);
      });
    });
  });

  it("decides from the ledger view read ahead (issue 11) instead of reading it again", async () => {
    let views = 0;
    const counting: LedgerWrapper = (ledger) => ({
      ...ledger,
      view: (...args) => {
        views++;
        return ledger.view(...args);
      },
    });
    await withSmtpSink(async (sink) => {
      await bench(
        target,
        sink.port,
        async ({ db, relay }) => {
          const id = fingerprint();
          const raw = testMessage();
          assert.equal((await relay(id, raw)).status, "delivered");
          assert.equal(views, 1);
          const again = await relay(id, raw, undefined, ledgerView(db, id, new Date()));
          assert.equal(again.chains[0]!.attempts[0]!.fromLedger, true);
          assert.equal(views, 1, "the relay read the ledger itself although the view was given");
          assert.equal(sink.messagesFor(DESTINATION).length, 1);
        },
        counting,
      );
    });
  });

  it("sends no second copy on a view read ahead before another attempt delivered: the claim holds the chain", async () => {
    await withSmtpSink(async (sink) => {
      await bench(target, sink.port, async ({ db, relay }) => {
        const id = fingerprint();
        const raw = testMessage();
        // read while nothing was known of the message; the first attempt delivers after it
        const early = await ledgerView(db, id, new Date());
        assert.equal((await relay(id, raw)).status, "delivered");
        const late = await relay(id, raw, undefined, Promise.resolve(early));
        assert.equal(late.status, "temporary");
        assert.equal(late.chains[0]!.held, "in-flight");
        assert.equal(sink.messagesFor(DESTINATION).length, 1);
      });
    });
  });

  it("forgets the intent when the destination answered the dot with 4xx, so an immediate retry is sent, not held", async () => {
    await withSmtpSink(async (sink) => {
      sink.fail({ stage: "data", code: 451, text: "4.2.0 mailbox busy", times: 1 });
      await bench(target, sink.port, async ({ db, relay }) => {
        const id = fingerprint();
        const raw = testMessage();
        assert.equal((await relay(id, raw)).status, "temporary");
        assert.deepEqual((await ledgerView(db, id, new Date())).intents, new Map());
        assert.equal((await relay(id, raw)).status, "delivered");
        assert.equal(sink.messagesFor(DESTINATION).length, 1);
      });
    });
  });

  it("resends at once, and logs it, when the previous attempt lost its connection after the dot (maybe delivered)", async () => {
    await withFlakySink((index) => (index === 0 ? "drop" : "accept"), async (sink) => {
      await bench(target, sink.port, async ({ db, logs, relay }) => {
        const id = fingerprint();
        const raw = testMessage();
        assert.equal((await relay(id, raw)).status, "temporary");
        assert.equal((await ledgerView(db, id, new Date())).intents.get(DESTINATION)?.state, "maybe-delivered");
        assert.equal((await relay(id, raw)).status, "delivered");
        assert.equal(sink.copies.length, 1);
        assert.deepEqual(
          logs.filter((line) => line.event === "ledger_resending_maybe_delivered").map((line) => [line["rcpt"], line["state"]]),
          [[DESTINATION, "maybe-delivered"]],
        );
      });
    });
  });

  it("holds retries while a crashed attempt's intent may be live, then resends the message", async () => {
    await withSmtpSink(async (sink) => {
      await bench(target, sink.port, async ({ db, logs, relay }) => {
        const id = fingerprint();
        const raw = testMessage();
        const settlesAt = new Date(Date.now() + 1000);
        // what a process killed between its dot and its commit leaves behind
        assert.equal(await claimDelivery(db, { fingerprint: id, destination: DESTINATION, attemptId: "killed", now: new Date(), settlesAt, ttlDays: 7 }), true);
        const held = await relay(id, raw);
        assert.equal(held.chains[0]!.held, "in-flight");
        assert.equal(sink.connectionsSeen, 0, "a held chain does not even connect");
        await sleep(settlesAt.getTime() - Date.now() + 50);
        assert.equal((await relay(id, raw)).status, "delivered");
        assert.equal(sink.messagesFor(DESTINATION).length, 1);
        assert.ok(logs.some((line) => line.event === "ledger_resending_maybe_delivered" && line["state"] === "sending"));
      });
    });
  });

  it("asked with afterReply (a sender waits), resolves before the acceptance is committed and hands the write there; without it, waits for the commit (issue 11)", { timeout: 20_000 }, async () => {
    const first = delayed("recordAccepted");
    const afterReply = new PendingWrites();
    await withSmtpSink(async (sink) => {
      await bench(
        target,
        sink.port,
        async ({ db, relay }) => {
          const id = fingerprint();
          const raw = testMessage();
          const relaying = relay(id, raw);
          try {
            const answered = await Promise.race([relaying.then(() => "answered"), sink.waitForMessages(1).then(() => sleep(200)).then(() => "waiting")]);
            assert.equal(answered, "answered", "answered while the acceptance waits");
            assert.equal((await relaying).status, "delivered");
            assert.equal(afterReply.size, 1);
            assert.deepEqual([...(await ledgerView(db, id, new Date())).accepted], [], "not committed yet");
          } finally {
            first.allow();
            await relaying;
          }
          await afterReply.settled();
          assert.deepEqual([...(await ledgerView(db, id, new Date())).accepted], [DESTINATION]);
          const retry = await relay(id, raw);
          assert.equal(retry.chains[0]!.attempts[0]!.fromLedger, true, "a retry finds it delivered");
          assert.equal(sink.messagesFor(DESTINATION).length, 1);
        },
        first.wrap,
        DEADLINE_MS,
        afterReply,
      );
    });
    // the same slow write without afterReply: the relay waits for it (the queue runner, tests)
    const second = delayed("recordAccepted");
    await withSmtpSink(async (sink) => {
      await bench(
        target,
        sink.port,
        async ({ db, relay }) => {
          const id = fingerprint();
          const relaying = relay(id, testMessage());
          assert.equal(await Promise.race([relaying.then(() => "answered"), sink.waitForMessages(1).then(() => sleep(100)).then(() => "waiting")]), "waiting");
          second.allow();
          assert.equal((await relaying).status, "delivered");
          assert.deepEqual([...(await ledgerView(db, id, new Date())).accepted], [DESTINATION], "committed when the relay answered");
        },
        second.wrap,
      );
    });
  });

  it("answers delivered when the 250 cannot be recorded (the destination has it), and holds the next retry", async () => {
    await withSmtpSink(async (sink) => {
      await bench(target, sink.port, async ({ db, logs, relay }) => {
        await refuseWrites(db, target.label, "delivery_ledger");
        const id = fingerprint();
        const raw = testMessage();
        assert.equal((await relay(id, raw)).status, "delivered");
        assert.ok(logs.some((line) => line.event === "ledger_record_failed"));
        // without the acceptance the intent is what stands between a retry and a duplicate
        assert.equal((await relay(id, raw)).chains[0]!.held, "in-flight");
        assert.equal(sink.messagesFor(DESTINATION).length, 1);
      });
    });
  });
});
