/**
 * The store writer (src/store/sqlite-writer.ts) on real SQLite files, on a thread of its own,
 * hosted by the first signing thread, and on this thread with its jobs grouped per turn of the
 * event loop (src/store/sqlite-group-commit.ts, `--store-writer-thread false`), alike: what it commits the Kysely connection reads at once;
 * a job's transaction is all or nothing; it waits for a write lock the SMTP thread's connection
 * holds instead of deadlocking with it; the delivery ledger and the event recorder give the same
 * answers through it as on the Kysely connection; an idle writer does not keep a process alive;
 * once its jobs pause, a WAL of 256 frames or more is checkpointed and started over, so the next
 * job's commit writes no WAL header.
 * Hosted, it adds no thread, and a host thread that dies fails only the jobs it held.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { after, before, describe, it } from "node:test";
import { sql } from "kysely";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { createEventRecorder, type MailEvent } from "../../src/analytics/event-recorder.ts";
import { storeDeliveryLedger } from "../../src/store/delivery-ledger-store.ts";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { recentEvents } from "../../src/store/repositories/event-repository.ts";
import { leaseKyselyConnection } from "../../src/store/kysely-connection-lease.ts";
import { SqliteGroupCommit } from "../../src/store/sqlite-group-commit.ts";
import { SqliteWriter, SqliteWriterError, type StoreWriter } from "../../src/store/sqlite-writer.ts";
import { serveWrites } from "../../src/store/sqlite-writer-service.ts";
import { createSigningPool, type SigningPool } from "../../src/delivery/signing-pool.ts";

const run = promisify(execFile);

/** Names of this process's threads, as the OS has them (15 characters at most). */
async function threadNames(): Promise<string[]> {
  return Promise.all((await readdir("/proc/self/task")).map(async (task) => (await readFile(`/proc/self/task/${task}/comm`, "utf8")).trim()));
}

const OWN_THREAD = "a thread of its own";
const SIGNING_THREAD = "the first signing thread";
const THIS_THREAD = "this thread, grouped per turn";

for (const host of [OWN_THREAD, SIGNING_THREAD, THIS_THREAD]) describe(`store writer on ${host}`, () => {
  let root: string;
  let store: Store;
  let writer: StoreWriter;
  const pools: SigningPool[] = [];
  /** A writer as start-service makes it for this host: its own thread, or a signing pool's first. */
  const startWriter = async (file: string): Promise<StoreWriter> => {
    if (host === OWN_THREAD) return SqliteWriter.start(file);
    if (host === THIS_THREAD) return new SqliteGroupCommit(leaseKyselyConnection(store.db));
    const keyDir = join(root, `keys-${pools.length}`);
    await mkdir(keyDir);
    const pool = await createSigningPool({ keyDir, hostname: "mx.writer.test", threads: 1, hostStoreWriter: file });
    pools.push(pool);
    return SqliteWriter.hostedBy(pool.writerPort!);
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "mailroute-writer-"));
    store = await openStore({ dataDir: join(root, "data") });
    writer = await startWriter(store.sqliteFile!);
  });
  after(async () => {
    await writer.close();
    for (const pool of pools) await pool.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it(host === OWN_THREAD ? "runs on a thread named mailroute-store-writer" : host === SIGNING_THREAD ? "adds no thread: the signing thread runs it" : "adds no thread at all", async () => {
    await writer.run([{ sql: "insert into settings (key, value) values ('where', '1')", parameters: [] }], { transaction: false });
    const names = await threadNames();
    assert.equal(names.includes("mailroute-store"), host === OWN_THREAD, names.join(", "));
    assert.equal(names.filter((name) => name.startsWith("mailroute-")).join(","), { [OWN_THREAD]: "mailroute-store", [SIGNING_THREAD]: "mailroute-signi", [THIS_THREAD]: "" }[host]);
  });

  it("commits what the Kysely connection then reads, and answers with the rows of statements that return some", async () => {
    const [inserted, none, selected] = await writer.run(
      [
        { sql: "insert into settings (key, value) values (?, ?) returning key", parameters: ["writer.a", "1"] },
        { sql: "insert into settings (key, value) values (?, ?)", parameters: ["writer.b", "2"] },
        { sql: "select key, value from settings where key like 'writer.%' order by key", parameters: [] },
      ],
      { transaction: true },
    );
    assert.deepEqual(inserted, [{ key: "writer.a" }]);
    assert.deepEqual(none, []);
    assert.deepEqual(selected, [{ key: "writer.a", value: "1" }, { key: "writer.b", value: "2" }]);
    const read = await store.db.selectFrom("settings").select(["key", "value"]).where("key", "like", "writer.%").orderBy("key").execute();
    assert.deepEqual(read, [{ key: "writer.a", value: "1" }, { key: "writer.b", value: "2" }]);
  });

  it("rolls a failed job back whole and rejects with SQLite's error", async () => {
    await assert.rejects(
      writer.run(
        [
          { sql: "insert into settings (key, value) values (?, ?)", parameters: ["rollback.a", "1"] },
          { sql: "insert into settings (key, value) values (?, ?)", parameters: ["rollback.a", "again"] },
        ],
        { transaction: true },
      ),
      (error: unknown) => error instanceof SqliteWriterError && /UNIQUE constraint failed/.test(error.message) && error.code === "ERR_SQLITE_ERROR",
    );
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "=", "rollback.a").execute()).length, 0, "nothing of the failed job remains");
    // and the writer goes on with the next job
    await writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["rollback.b", "1"] }], { transaction: false });
  });

  it("answers each of many jobs given at once on its own: one failing fails only itself", async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        writer.run([{ sql: "insert into settings (key, value) values (?, ?) returning key", parameters: [index === 7 ? "batch.0" : `batch.${index}`, String(index)] }], { transaction: true }),
      ),
    );
    assert.deepEqual(outcomes.map((outcome) => outcome.status), Array.from({ length: 20 }, (_, index) => (index === 7 ? "rejected" : "fulfilled")));
    assert.deepEqual((outcomes[3] as PromiseFulfilledResult<unknown>).value, [[{ key: "batch.3" }]]);
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "like", "batch.%").execute()).length, 19);
  });

  it("waits for a write lock the Kysely connection holds across awaits, then commits (no deadlock)", async () => {
    let written: Promise<unknown> | null = null;
    await store.db.transaction().execute(async (trx) => {
      await trx.insertInto("settings").values({ key: "lock.held", value: "1" }).execute();
      written = writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["lock.writer", "1"] }], { transaction: true });
      // the writer is blocked on our lock meanwhile; this thread keeps running
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal((await trx.selectFrom("settings").select("key").where("key", "=", "lock.writer").execute()).length, 0);
    });
    await written;
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "in", ["lock.held", "lock.writer"]).execute()).length, 2);
  });

  it("gives the delivery ledger's answers through the writer as on the Kysely connection", async () => {
    const T0 = new Date("2026-03-01T12:00:00.000Z");
    const clock = { now: T0 };
    const answers = async (ledger: ReturnType<typeof storeDeliveryLedger>, fingerprint: string) => {
      const steps: unknown[] = [];
      steps.push(await ledger.claim(fingerprint, "a@x.net", "first", new Date(T0.getTime() + 10_000)));
      steps.push(await ledger.claim(fingerprint, "a@x.net", "second", new Date(T0.getTime() + 10_000)));
      steps.push(await ledger.view(fingerprint));
      await ledger.settle(fingerprint, "a@x.net", "first", "maybe-sent");
      steps.push(await ledger.view(fingerprint));
      steps.push(await ledger.claim(fingerprint, "b@y.net", "third", new Date(T0.getTime() + 10_000)));
      await ledger.settle(fingerprint, "b@y.net", "third", "not-sent");
      await ledger.recordAccepted(fingerprint, "c@z.net", "250 ok");
      steps.push(await ledger.view(fingerprint));
      return steps;
    };
    const direct = await answers(storeDeliveryLedger(store.db, { ttlDays: 7, now: () => clock.now, owner: "node" }), "fp-direct");
    const viaWriter = await answers(storeDeliveryLedger(store.db, { ttlDays: 7, now: () => clock.now, owner: "node", writer }), "fp-writer");
    assert.deepEqual(viaWriter, direct);
    assert.equal(direct[0], true);
    assert.equal(direct[1], false, "a live intent is not claimed twice");
    const intents = await store.db.selectFrom("delivery_intents").select(["fingerprint", "attempt_id", "state"]).orderBy("fingerprint").execute();
    assert.deepEqual(intents, [
      { fingerprint: "fp-direct", attempt_id: "node/first", state: "maybe-delivered" },
      { fingerprint: "fp-writer", attempt_id: "node/first", state: "maybe-delivered" },
    ]);
  });

  it("records events through the writer, each record readable once it resolves; a refused row loses only its own message's", async () => {
    const event = (rcpt: string): MailEvent => ({ received_at: "2026-11-01T00:00:00.000Z", session_id: "s", client_ip: "192.0.2.1", message_id: null, subject: null, mail_from: "a@x.test", rcpt_to: rcpt, zone: "x.test", action: "forward", outcome: "forwarded", reply_code: 250, reply_text: "250 ok", size: 10, duration_ms: 1, detail: "{}" });
    const failures: unknown[] = [];
    const logger = { ...silentLogger, log: (_level: string, name: string, fields: unknown) => void (name === "event_record_failed" && failures.push(fields)) };
    const recorder = createEventRecorder(store.db, logger as typeof silentLogger, () => "acct", "node-1", writer);
    const broken = { ...event("bad@example.com"), action: null as unknown as string };
    await Promise.all(
      [[event("r1@example.com")], [broken], [event("r2@example.com"), event("r3@example.com")]].map(async (events) => {
        await recorder.record(events);
        for (const one of events) if (one !== broken) assert.ok((await recentEvents(store.db, 100)).some((row) => row.rcpt_to === one.rcpt_to), `${one.rcpt_to} readable`);
      }),
    );
    const rows = (await recentEvents(store.db, 100)).filter((row) => row.rcpt_to.startsWith("r"));
    assert.deepEqual(rows.map((row) => row.rcpt_to).sort(), ["r1@example.com", "r2@example.com", "r3@example.com"]);
    assert.ok(rows.every((row) => row.account_id === "acct" && row.node_id === "node-1"));
    assert.equal(failures.length, 1);
    const hourly = await store.db.selectFrom("event_hourly").select(["zone", "outcome", "count"]).where("zone", "=", "x.test").execute();
    assert.deepEqual(hourly, [{ zone: "x.test", outcome: "forwarded", count: 3 }], "the rollup counts what was recorded, not the refused row");
  });

  it("does not keep an idle process alive", async () => {
    const script = `
      import { openStore } from ${JSON.stringify(new URL("../../src/store/open-store.ts", import.meta.url).href)};
      import { SqliteWriter } from ${JSON.stringify(new URL("../../src/store/sqlite-writer.ts", import.meta.url).href)};
      import { createSigningPool } from ${JSON.stringify(new URL("../../src/delivery/signing-pool.ts", import.meta.url).href)};
      import { SqliteGroupCommit } from ${JSON.stringify(new URL("../../src/store/sqlite-group-commit.ts", import.meta.url).href)};
      import { leaseKyselyConnection } from ${JSON.stringify(new URL("../../src/store/kysely-connection-lease.ts", import.meta.url).href)};
      const store = await openStore({ dataDir: ${JSON.stringify(join(root, "idle"))} });
      const writer = ${{ [OWN_THREAD]: "await SqliteWriter.start(store.sqliteFile)", [SIGNING_THREAD]: "await SqliteWriter.hostedBy((await createSigningPool({ keyDir: store.sqliteFile + '-keys', hostname: 'mx.writer.test', threads: 1, hostStoreWriter: store.sqliteFile })).writerPort)", [THIS_THREAD]: "new SqliteGroupCommit(leaseKyselyConnection(store.db))" }[host]};
      await writer.run([{ sql: "insert into settings (key, value) values ('idle', '1')", parameters: [] }], { transaction: false });
      await store.close();
      console.log("done");
    `;
    const file = join(root, "idle-child.mjs");
    await writeFile(file, script);
    const { stdout } = await run(process.execPath, [file], { timeout: 20_000 });
    assert.equal(stdout.trim(), "done");
  });

  // NOOP: what the WAL holds and how much of it is already in the database file, changing nothing
  const walState = async () => (await sql<{ log: number; checkpointed: number }>`pragma wal_checkpoint(noop)`.execute(store.db)).rows[0]!;
  const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /**
   * The WAL file's header: its checkpoint sequence number (bytes 12–15), which SQLite raises each
   * time it starts the WAL over and writes a new header (and fsyncs it), and its salts.
   */
  const walHeader = async () => (await readFile(`${store.sqliteFile}-wal`)).subarray(12, 24).toString("hex");
  const settings = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => ({ sql: "insert into settings (key, value) values (?, ?)", parameters: [`${prefix}.${index}`, "x".repeat(3000)] }));

  it("checkpoints a WAL of 256 frames or more once its jobs pause, though it never reached SQLite's auto-checkpoint, and starts it over in that quiet", async () => {
    // one job, so no pause can fall in the middle of it: ~300 rows of a page each
    await writer.run(settings("quiet", 300), { transaction: true });
    const written = await walState();
    assert.ok(written.log >= 256 && written.log < 1000, `between the quiet checkpoint's 256 frames and the auto-checkpoint's 1,000: ${JSON.stringify(written)}`);
    const header = await walHeader();
    let state = written;
    const deadline = Date.now() + 10_000;
    // a read between the restart's new WAL header and the commit of its one page sees an empty WAL
    // (log 0): SQLite resets the WAL index before the frame is appended, so that is waited out too
    while ((state.log >= written.log || state.log === 0) && Date.now() < deadline) {
      await settle(20);
      state = await walState();
    }
    assert.ok(state.log > 0 && state.log < 8, `the WAL holds only the write that started it over: ${JSON.stringify(state)}`);
    assert.notEqual(await walHeader(), header, "a new WAL header: every frame before it was in the database file");
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "like", "quiet.%").execute()).length, 300);
    const { rows } = await sql<{ user_version: number }>`pragma user_version`.execute(store.db);
    assert.equal(rows[0]!.user_version, 0, "the write that started it over changed nothing");
  });

  it("leaves the next job's commit no new WAL header to write and fsync: the quiet already started the WAL over", async () => {
    await writer.run(settings("restart", 300), { transaction: true });
    const written = await walState();
    let state = written;
    const deadline = Date.now() + 10_000;
    // the quiet's work is done: the WAL checkpointed whole, and started over or not
    while (!(state.log < written.log || state.checkpointed === state.log) && Date.now() < deadline) {
      await settle(20);
      state = await walState();
    }
    await settle(100);
    const header = await walHeader();
    // one relayed message's claim, as it comes after a pause
    await writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["restart.claim", "1"] }], { transaction: true });
    assert.equal(await walHeader(), header, "the job did not start the WAL over (SQLite fsyncs the new header before the job's frames)");
    const appended = await walState();
    assert.ok(appended.log > appended.checkpointed, `the job's frames were appended: ${JSON.stringify(appended)}`);
  });

  it("leaves a WAL of a few frames as it is after a pause: not worth two fsyncs", async () => {
    await writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["quiet.few", "1"] }], { transaction: true });
    // the quiet is 50 ms: four times that, and the few frames are still only in the WAL
    await settle(200);
    const state = await walState();
    assert.ok(state.log > 0 && state.log < 256, JSON.stringify(state));
    assert.ok(state.checkpointed < state.log, `not checkpointed: ${JSON.stringify(state)}`);
  });

  it("refuses jobs once closed", async () => {
    const own = await startWriter(store.sqliteFile!);
    const pending = own.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["closing", "1"] }], { transaction: false });
    await own.close();
    await pending;
    await assert.rejects(own.run([], { transaction: false }), /closed/);
  });
});

/** A store on a fresh data directory for the suite that calls it, removed after it. */
function suiteStore(prefix: string): () => Store {
  let root: string;
  let store: Store;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), prefix));
    store = await openStore({ dataDir: join(root, "data") });
  });
  after(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  return () => store;
}

describe("store writer on this thread: what grouping per turn changes", () => {
  const storeOf = suiteStore("mailroute-group-commit-");
  let store: Store;
  before(() => {
    store = storeOf();
  });

  /** Frames in the WAL after `write`, from an empty one: a commit appends every page it changed. */
  async function walFramesAfter(write: () => Promise<unknown>): Promise<number> {
    await sql`pragma wal_checkpoint(truncate)`.execute(store.db);
    await write();
    const { rows } = await sql<{ log: number }>`pragma wal_checkpoint(passive)`.execute(store.db);
    return rows[0]!.log;
  }

  it("commits the jobs given in one turn together: their shared page is written once, not once per job", async () => {
    // no quiet checkpoint in between (a minute): it would restart the WAL this test counts
    const writer = new SqliteGroupCommit(leaseKyselyConnection(store.db), 60_000);
    const insert = (key: string) => writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: [key, "1"] }], { transaction: false });
    const together = await walFramesAfter(() => Promise.all(Array.from({ length: 20 }, (_, index) => insert(`turn.${index}`))));
    const oneByOne = await walFramesAfter(async () => {
      for (let index = 0; index < 20; index++) await insert(`apart.${index}`);
    });
    assert.ok(oneByOne >= 20, `20 jobs in 20 turns: ${oneByOne} frames`);
    assert.ok(together <= 4, `20 jobs in one turn: ${together} frames (one commit)`);
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "like", "turn.%").execute()).length, 20);
    await writer.close();
  });

  it("fails every job of a batch SQLite rolled back whole, with the error that did it, and goes on with the next", async () => {
    await sql`create table if not exists rollback_probe (x text)`.execute(store.db);
    await sql`create trigger if not exists rollback_probe_trigger before insert on rollback_probe when new.x = 'boom' begin select raise(rollback, 'rolled back whole'); end`.execute(store.db);
    const writer = new SqliteGroupCommit(leaseKyselyConnection(store.db));
    const outcomes = await Promise.allSettled([
      writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["whole.before", "1"] }], { transaction: true }),
      writer.run([{ sql: "insert into rollback_probe (x) values (?)", parameters: ["boom"] }], { transaction: true }),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.status === "rejected" ? (outcome.reason as Error).message : "fulfilled")),
      ["rolled back whole", "rolled back whole"],
    );
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "=", "whole.before").execute()).length, 0, "the job before it was undone with it");
    await writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["whole.after", "1"] }], { transaction: true });
    assert.equal((await store.db.selectFrom("settings").select("key").where("key", "=", "whole.after").execute()).length, 1);
    await writer.close();
  });

  it("waits for a Kysely transaction in progress and is not rolled back with it", async () => {
    const writer = new SqliteGroupCommit(leaseKyselyConnection(store.db));
    let written: Promise<unknown> | null = null;
    await assert.rejects(
      store.db.transaction().execute(async (trx) => {
        await trx.insertInto("settings").values({ key: "undone.kysely", value: "1" }).execute();
        written = writer.run([{ sql: "insert into settings (key, value) values (?, ?)", parameters: ["kept.writer", "1"] }], { transaction: true });
        await new Promise((resolve) => setTimeout(resolve, 30));
        throw new Error("the caller gives up");
      }),
      /gives up/,
    );
    await written;
    const keys = (await store.db.selectFrom("settings").select("key").where("key", "in", ["undone.kysely", "kept.writer"]).execute()).map((row) => row.key);
    assert.deepEqual(keys, ["kept.writer"]);
    await writer.close();
  });
});

describe("store writer hosted by another thread", () => {
  const storeOf = suiteStore("mailroute-writer-host-");
  let store: Store;
  before(() => {
    store = storeOf();
  });

  it("posts the jobs given in one turn to the host in one message, and takes their answers back in one, each job still answered on its own", async () => {
    // the host's service on this thread, behind a relay that counts what crosses it each way
    const toHost: unknown[] = [];
    const fromHost: unknown[] = [];
    const writerSide = new MessageChannel();
    const hostSide = new MessageChannel();
    writerSide.port2.on("message", (message: unknown) => {
      toHost.push(message);
      hostSide.port1.postMessage(message);
    });
    hostSide.port1.on("message", (message: unknown) => {
      fromHost.push(message);
      writerSide.port2.postMessage(message);
    });
    // the service closing its port ends the relay, as a host thread's end would
    hostSide.port1.once("close", () => writerSide.port2.close());
    serveWrites(hostSide.port2, store.sqliteFile!);
    const writer = await SqliteWriter.hostedBy(async () => writerSide.port1);
    try {
      fromHost.length = 0;
      const jobs = ["batch.1", "batch.2", "batch.2", "batch.3"].map((key) =>
        writer.run([{ sql: "insert into settings (key, value) values (?, 'v') returning key", parameters: [key] }], { transaction: false }).then(
          (rows) => rows[0]![0]!.key,
          (error: Error) => error,
        ),
      );
      const answers = await Promise.all(jobs);
      assert.equal(answers[0], "batch.1");
      assert.equal(answers[1], "batch.2");
      assert.ok(answers[2] instanceof SqliteWriterError && answers[2].code === "ERR_SQLITE_ERROR", "the duplicate key fails alone");
      assert.equal(answers[3], "batch.3");
      assert.equal(toHost.length, 1, `${toHost.length} messages to the host for 4 jobs of one turn`);
      assert.equal(fromHost.length, 1, `${fromHost.length} messages back for them`);
      // a job given in a later turn goes on its own
      await writer.run([{ sql: "insert into settings (key, value) values ('batch.4', 'v')", parameters: [] }], { transaction: true });
      assert.equal(toHost.length, 2);
      assert.equal((toHost[1] as unknown[]).length, 1);
    } finally {
      await writer.close();
    }
  });

  it("fails the jobs the dead thread held, then runs the next job on the host's replacement", async () => {
    const hosts: Worker[] = [];
    const host = async (): Promise<MessagePort> => {
      const { port1, port2 } = new MessageChannel();
      hosts.push(new Worker(new URL("../support/writer-host-thread.ts", import.meta.url), { workerData: { port: port2, path: store.sqliteFile }, transferList: [port2] }));
      return port1;
    };
    const writer = await SqliteWriter.hostedBy(host);
    try {
      await writer.run([{ sql: "insert into settings (key, value) values ('host.1', '1')", parameters: [] }], { transaction: true });
      const first = hosts[0]!;
      first.postMessage("hang");
      await new Promise((resolve) => first.once("message", resolve));
      const held = writer.run([{ sql: "insert into settings (key, value) values ('host.held', '1')", parameters: [] }], { transaction: true });
      await first.terminate();
      await assert.rejects(held, /host thread went away/);
      await writer.run([{ sql: "insert into settings (key, value) values ('host.2', '1')", parameters: [] }], { transaction: true });
      assert.equal(hosts.length, 2, "the next job asked the host for its replacement");
      const keys = await store.db.selectFrom("settings").select("key").where("key", "like", "host.%").orderBy("key").execute();
      assert.deepEqual(keys.map((row) => row.key), ["host.1", "host.2"], "the held job never ran");
    } finally {
      await writer.close();
      await Promise.all(hosts.map((worker) => worker.terminate()));
    }
  });
});
