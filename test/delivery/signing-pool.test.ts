import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { dkimVerify } from "mailauth";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";
import { MessageSpool } from "../../src/delivery/message-spool.ts";
import { createSigningPool, INLINE_BYTES, keyOperationsFor, keyOperationsHere, SIGN_HERE_BYTES, type SigningPool } from "../../src/delivery/signing-pool.ts";
import { eventLoopTurnsWhile, settlesWithinMicrotasks } from "../support/event-loop-turns.ts";

const run = promisify(execFile);
let dir: string;
let pool: SigningPool;
let records: Map<string, string>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "mailroute-signing-pool-"));
  pool = await createSigningPool({ keyDir: dir, selector: "mailroute", ed25519: true, hostname: "mx.route.example", threads: 2 });
  // the keys the threads sign with are the ones on disk, published as `mailroute doctor` says
  records = new Map((await new DkimKeyStore({ dir, ed25519: true }).publicRecords("route.example")).map((record) => [record.name, record.value]));
});

after(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

function message(body: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from("From: Alice <alice@sender.example>\r\nTo: bob@route.example\r\nSubject: pooled\r\nMessage-ID: <p1@sender.example>\r\n\r\n"), Buffer.from(body)]);
}

async function verdicts(headers: Buffer, copy: Buffer): Promise<string[]> {
  const resolver = async (name: string) => {
    const value = records.get(name.replace(/\.$/, ""));
    if (value === undefined) throw Object.assign(new Error(`no ${name}`), { code: "ENOTFOUND" });
    return [[value]];
  };
  const result = await dkimVerify(Buffer.concat([headers, copy]), { resolver: resolver as never });
  return result.results.map((row) => `${row.signingDomain} ${row.algo} ${row.status.result}`).sort();
}

describe("signing pool", () => {
  it("DKIM-signs on a worker thread with the data dir's keys, and a verifier passes both signatures", async () => {
    const copy = message("Hello Bob,\r\nsee you at noon.\r\n");
    const signed = await pool.sign({ message: copy, routingDomain: "route.example", arc: null, authenticationResults: null });
    assert.deepEqual(signed.dkim, [
      { selector: "mailroute", algorithm: "rsa-sha256" },
      { selector: "mailroute-ed", algorithm: "ed25519-sha256" },
    ]);
    assert.deepEqual(signed.skipped, [{ part: "arc", reason: "no inbound ARC result to seal" }]);
    assert.deepEqual(await verdicts(signed.headers, copy), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
  });

  it("streams a multi-megabyte message to the thread in order, all of it (the body hash covers every byte)", async () => {
    const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    const copy = message(line.repeat(Math.ceil((3 * 1024 * 1024) / line.length)));
    // a stream of odd-sized chunks, as the spool hands it over
    const source = Readable.from((function* () {
      for (let start = 0; start < copy.length; start += 100_003) yield copy.subarray(start, start + 100_003);
    })());
    const signed = await pool.sign({ message: source, routingDomain: "route.example", arc: null, authenticationResults: null });
    assert.deepEqual(await verdicts(signed.headers, copy), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
  });

  it("signs a Buffer on either side of the size posted whole with its job (above it, the Buffer is streamed)", async () => {
    for (const size of [INLINE_BYTES - 1000, INLINE_BYTES + 1000, 3 * INLINE_BYTES]) {
      // lines of 76 bytes, about `size` bytes in all
      const body = Buffer.alloc(size - 200, "a");
      for (let at = 76; at < body.length; at += 78) body.write("\r\n", at);
      const whole = message(body);
      const signed = await pool.sign({ message: whole, routingDomain: "route.example", arc: null, authenticationResults: null });
      assert.deepEqual(await verdicts(signed.headers, whole), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"], `${whole.length} bytes`);
    }
  });

  it("signs a spilled message named by its spool: the thread reads the file itself, every byte of it", async () => {
    const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    const copy = message(line.repeat(Math.ceil((3 * 1024 * 1024) / line.length)));
    const spool = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir: dir });
    try {
      // the spool holds the first 256 KiB in memory and the rest in its file, as a received message
      await spool.fill(Readable.from([copy.subarray(0, 100_000), copy.subarray(100_000)]));
      const prefix = Buffer.from("Received: by mx.route.example\r\n");
      const spilled = spool.spilled(prefix);
      assert.ok(spilled !== null && spilled.file.bytes > 0, "part of the message is in the spool's file");
      const signed = await pool.sign({ message: spilled, routingDomain: "route.example", arc: null, authenticationResults: null });
      assert.deepEqual(await verdicts(signed.headers, Buffer.concat([prefix, copy])), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
      // a copy whose file holds fewer bytes than it names is an error, not a shorter message
      await assert.rejects(pool.sign({ message: { head: spilled.head, file: { path: spilled.file.path, bytes: spilled.file.bytes + 10 } }, routingDomain: "route.example", arc: null, authenticationResults: null }), /expected/);
    } finally {
      await spool.dispose();
    }
  });

  it("signs many messages at once across its threads, each with its own signature", async () => {
    const copies = Array.from({ length: 12 }, (_, index) => message(`message number ${index}\r\n`));
    const results = await Promise.all(copies.map((copy) => pool.sign({ message: copy, routingDomain: "route.example", arc: null, authenticationResults: null })));
    for (const [index, signed] of results.entries()) {
      assert.deepEqual(await verdicts(signed.headers, copies[index]!), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
    }
  });

  it("fails the job whose message stream fails, and keeps signing the next one", async () => {
    const broken = new PassThrough();
    broken.write(message("the start of a message\r\n"));
    setImmediate(() => broken.destroy(new Error("client went away")));
    await assert.rejects(pool.sign({ message: broken, routingDomain: "route.example", arc: null, authenticationResults: null }), /client went away|message stream/);
    const signed = await pool.sign({ message: message("next\r\n"), routingDomain: "route.example", arc: null, authenticationResults: null });
    assert.equal(signed.dkim.length, 2);
  });

  it("keeps each thread's heap near its live size under load, not a young generation sized for throughput (issue 11, RSS)", async () => {
    // bounded: 300 rounds of 16 concurrent small messages (unlimited, a thread grew past 150 MiB)
    for (let round = 0; round < 300; round++) {
      await Promise.all(Array.from({ length: 16 }, () => pool.sign({ message: Readable.from([message("x".repeat(1024))]), routingDomain: "route.example", arc: null, authenticationResults: null })));
    }
    const heaps = await pool.heapStatistics();
    assert.equal(heaps.length, 2);
    for (const heap of heaps) assert.ok(heap.totalHeapSize < 100 * 1024 * 1024, `a signing thread holds ${(heap.totalHeapSize / 1048576).toFixed(0)} MiB of heap`);
  });

  it("frees each message copy once its job is answered, not when the thread's heap next collects (issue 11, RSS)", async () => {
    // the inline path: each copy is allocated on this thread and transferred; kept until the
    // thread's next major GC, 100 KiB × 10 sessions held ~50 MiB of them in this thread's heap
    const copies = Array.from({ length: 40 }, (_, index) => message(`${index}\r\n${`${"y".repeat(76)}\r\n`.repeat(1300)}`));
    assert.ok(copies[0]!.length <= INLINE_BYTES);
    const before = await pool.heapStatistics();
    for (const copy of copies) await pool.sign({ message: copy, routingDomain: "route.example", arc: null, authenticationResults: null });
    const after = await pool.heapStatistics();
    // all 40 copies are ~4 MiB; held copies would show as most of that. The bound is half of it:
    // a busy machine was seen reporting ~1 MiB more external memory at this point (CI, under
    // full-suite load), with every copy released
    const total = copies.reduce((sum, copy) => sum + copy.length, 0);
    for (const [index, heap] of after.entries()) {
      const held = heap.externalMemory - before[index]!.externalMemory;
      assert.ok(held < total / 2, `signing thread ${index} still holds ${(held / 1024).toFixed(0)} KiB of answered messages (${(total / 1024).toFixed(0)} KiB were sent)`);
    }
  });

  it("keeps mailauth and the packages it brings out of the signing thread (issue 11, RSS: +21 MiB)", async () => {
    const probe = join(import.meta.dirname, "..", "support", "signing-thread-packages-process.ts");
    const hook = join(import.meta.dirname, "..", "support", "thread-packages-hook.ts");
    const { stdout } = await run(process.execPath, ["--import", hook, probe], { encoding: "utf8", timeout: 60_000 });
    const { signed, loaded } = JSON.parse(stdout.trim().split("\n").at(-1)!) as { signed: { dkim: number; arc: unknown }; loaded: { thread: string; url: string }[] };
    // it did the whole job, and the hook saw the thread that did it
    assert.deepEqual(signed, { dkim: 2, arc: { instance: 1, cv: "none" } });
    const thread = loaded.filter((entry) => entry.thread === "mailroute-signing-0").map((entry) => entry.url);
    assert.ok(thread.some((url) => url.endsWith("/src/delivery/message-signer.ts")), `the probe saw the signing thread load its signer: ${thread.length} modules`);
    const packages = new Set(thread.filter((url) => url.includes("/node_modules/")).map((url) => url.slice(url.lastIndexOf("/node_modules/") + "/node_modules/".length).split("/")[0]!));
    const heavy = ["mailauth", "joi", "@hapi", "libmime", "encoding-japanese", "iconv-lite", "tldts", "punycode.js", "punycode"].filter((name) => packages.has(name));
    assert.deepEqual(heavy, [], `the signing thread loaded ${[...packages].join(", ")}`);
  });

  it("with threads: 0, signs on this thread with each key operation on libuv's pool: the thread keeps turning meanwhile, and a verifier passes (issue 11)", async () => {
    const here = await createSigningPool({ keyDir: dir, selector: "mailroute", ed25519: true, hostname: "mx.route.example", threads: 0 });
    try {
      const copy = message("Hello Bob,\r\nsigned beside the sessions.\r\n");
      const request = { message: copy, routingDomain: "route.example", arc: { status: { result: "none" as const } }, authenticationResults: null };
      // the first job loads the signer and the keys (file reads): not what is counted
      await here.sign(request);
      // four key operations, one after the other (DKIM RSA, DKIM Ed25519, ARC-Message-Signature,
      // ARC-Seal): each answer from the pool but perhaps the first arrives on a turn of the event
      // loop of its own. Signed inline, all of them would run before the loop turned once.
      const { turns, result: signed } = await eventLoopTurnsWhile(() => here.sign(request));
      assert.ok(turns >= 3, `the event loop turned ${turns} times while the copy was signed`);
      assert.deepEqual(signed.arc, { instance: 1, cv: "none" });
      assert.deepEqual(signed.skipped, []);
      assert.deepEqual(await verdicts(signed.headers, copy), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
    } finally {
      await here.close();
    }
  });

  it("signs a job that has its thread to itself inline, and one behind others on libuv's pool (issue 11)", () => {
    assert.equal(keyOperationsFor(0), "inline");
    assert.equal(keyOperationsFor(1), "thread-pool");
    assert.equal(keyOperationsFor(7), "thread-pool");
  });

  it("with signing threads, signs a copy alone on a signing thread too, however idle the caller: the caller's own signer would be cold (issue 11)", async () => {
    const pool = await createSigningPool({ keyDir: dir, selector: "mailroute", ed25519: true, hostname: "mx.route.example", threads: 1, callerIdle: () => true });
    try {
      const copy = message("Hello Bob,\r\nsigned on the warm thread.\r\n");
      const request = { message: copy, routingDomain: "route.example", arc: { status: { result: "none" as const } }, authenticationResults: null };
      await pool.sign(request);
      // signed here, every signature would be made before the event loop turned once; a signing
      // thread's answer arrives on a turn of its own
      const signing = pool.sign(request);
      assert.equal(await settlesWithinMicrotasks(signing), false, "the copy went to the signing thread");
      const signed = await signing;
      assert.deepEqual(signed.arc, { instance: 1, cv: "none" });
      assert.deepEqual(await verdicts(signed.headers, copy), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
    } finally {
      await pool.close();
    }
  });

  it("with threads: 0, makes the key operations inline too while the calling thread has nothing else to do", async () => {
    const here = await createSigningPool({ keyDir: dir, selector: "mailroute", ed25519: true, hostname: "mx.route.example", threads: 0, callerIdle: () => true });
    try {
      const copy = message("Hello Bob,\r\nno one else to serve.\r\n");
      const request = { message: copy, routingDomain: "route.example", arc: null, authenticationResults: null };
      await here.sign(request);
      const { turns, result } = await eventLoopTurnsWhile(() => here.sign(request));
      assert.equal(turns, 0, "no key operation went to libuv's pool");
      assert.deepEqual(await verdicts(result.headers, copy), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
    } finally {
      await here.close();
    }
  });

  it("with threads: 0, makes the key operations inline only when the caller is idle and the copy is a Buffer of at most SIGN_HERE_BYTES", () => {
    const small = Buffer.alloc(SIGN_HERE_BYTES);
    const idle = () => true;
    assert.equal(keyOperationsHere(idle, small), "inline");
    assert.equal(keyOperationsHere(() => false, small), "thread-pool", "the caller serves other sessions");
    assert.equal(keyOperationsHere(idle, Buffer.alloc(SIGN_HERE_BYTES + 1)), "thread-pool", "a larger copy's hashing would hold the caller");
    assert.equal(keyOperationsHere(idle, Readable.from([small])), "thread-pool", "a stream is read as it comes");
    let asked = 0;
    keyOperationsHere(() => ++asked > 0, Buffer.alloc(SIGN_HERE_BYTES + 1));
    assert.equal(asked, 0, "the caller is not asked for a copy that would not be signed inline anyway");
  });

  it("refuses to sign after close", async () => {
    const closing = await createSigningPool({ keyDir: dir, selector: "mailroute", ed25519: false, hostname: "mx.route.example", threads: 1 });
    await closing.close();
    await assert.rejects(closing.sign({ message: message("late\r\n"), routingDomain: "route.example", arc: null, authenticationResults: null }), /signing pool is closed/);
  });
});
