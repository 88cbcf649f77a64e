import assert from "node:assert/strict";
import { it } from "node:test";
import { sql } from "kysely";
import { createKvNamespaces, KV_LIMITS, KvError, kvPutExpiration, prefixSuccessor, purgeExpiredKv } from "../../../src/core/kv/kv-namespaces.ts";
import { WorkerCallError } from "../../../src/workers/worker-types.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decode = (value: Uint8Array): string => new TextDecoder().decode(value);
/** Cloudflare's order: UTF-8 bytes. */
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
const NOW_MS = 1_800_000_000_000;

forEachDatabase((target) => {
  async function setup(now = () => NOW_MS) {
    const store = await target.open();
    return { db: store.db, kv: createKvNamespaces(store.db, "default", { now }) };
  }

  it("stores arbitrary bytes and metadata, and answers null for a missing key", async () => {
    const { kv } = await setup();
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    await kv.put("ns", "binary", bytes, { metadata: { kind: "all bytes", n: 256 } });
    const entry = await kv.get("ns", "binary");
    assert.ok(entry !== null);
    assert.deepEqual([...entry.value], [...bytes]);
    assert.equal(entry.value.byteOffset, 0);
    assert.equal(entry.value.buffer.byteLength, 256, "the value owns its buffer");
    assert.deepEqual(entry.metadata, { kind: "all bytes", n: 256 });
    await kv.put("ns", "plain", text("hello"), {});
    assert.deepEqual(await kv.get("ns", "plain").then((e) => ({ value: decode(e!.value), metadata: e!.metadata })), { value: "hello", metadata: null });
    assert.equal(await kv.get("ns", "missing"), null);
    assert.deepEqual([...(await kv.get("ns", "empty-after-put").then(() => new Uint8Array()))], []);
  });

  it("replaces value, metadata and expiration on a second put, and forgets on delete", async () => {
    const { kv } = await setup();
    await kv.put("ns", "k", text("one"), { metadata: { v: 1 }, expiration: NOW_MS / 1000 + 3600 });
    await kv.put("ns", "k", text("two"), {});
    const entry = await kv.get("ns", "k");
    assert.equal(decode(entry!.value), "two");
    assert.equal(entry!.metadata, null);
    assert.deepEqual((await kv.list("ns", {})).keys, [{ name: "k" }]);
    await kv.delete("ns", "k");
    assert.equal(await kv.get("ns", "k"), null);
    await kv.delete("ns", "k"); // deleting what is not there is not an error
  });

  it("treats an expired entry as absent to get and list, before and after the purge", async () => {
    let now = NOW_MS;
    const { db, kv } = await setup(() => now);
    const expiration = NOW_MS / 1000 + 120;
    await kv.put("ns", "short", text("x"), { expiration, metadata: "m" });
    await kv.put("ns", "long", text("y"), {});
    assert.deepEqual((await kv.list("ns", {})).keys, [{ name: "long" }, { name: "short", expiration, metadata: "m" }]);
    now = expiration * 1000 - 1;
    assert.notEqual(await kv.get("ns", "short"), null, "alive until its second");
    now = expiration * 1000;
    assert.equal(await kv.get("ns", "short"), null);
    assert.deepEqual((await kv.list("ns", {})).keys, [{ name: "long" }]);
    assert.equal(await purgeExpiredKv(db, new Date(now)), 1);
    assert.equal(await purgeExpiredKv(db, new Date(now)), 0);
    assert.equal(decode((await kv.get("ns", "long"))!.value), "y");
  });

  it("refuses an expiration that has already passed", async () => {
    const { kv } = await setup();
    await assert.rejects(kv.put("ns", "k", text("v"), { expiration: NOW_MS / 1000 }), {
      message: `KV PUT failed: 400 Invalid expiration of ${NOW_MS / 1000}. Please specify integer greater than the current number of seconds since the UNIX epoch.`,
    });
  });

  it("lists keys in UTF-8 byte order, with a prefix that matches exactly its keys", async () => {
    const { kv } = await setup();
    const keys = ["b", "a", "A", "é", "z", "~", "ab", "ab/1", "ab/2", "abz", "ac", "a b", "ä", "日本", "\u{1F600}", "\uFFFD"];
    for (const key of keys) await kv.put("ns", key, text(key), {});
    assert.deepEqual(
      (await kv.list("ns", {})).keys.map((k) => k.name),
      [...keys].sort(byteOrder),
    );
    assert.deepEqual((await kv.list("ns", { prefix: "ab" })).keys.map((k) => k.name), ["ab", "ab/1", "ab/2", "abz"]);
    assert.deepEqual((await kv.list("ns", { prefix: "ab/" })).keys.map((k) => k.name), ["ab/1", "ab/2"]);
    assert.deepEqual((await kv.list("ns", { prefix: "nothing" })).keys, []);
    assert.deepEqual((await kv.list("ns", { prefix: "" })).keys.length, keys.length);
  });

  if (target.label === "postgres") {
    it("compares keys byte-wise on PostgreSQL whatever the database's collation", async () => {
      const { db } = await setup();
      const { rows } = await sql<{ collation_name: string | null }>`select collation_name from information_schema.columns where table_name = 'kv_entries' and column_name = 'key'`.execute(db);
      assert.deepEqual(rows, [{ collation_name: "C" }]);
    });
  }

  it("pages with an opaque cursor that stays stable while keys come and go", async () => {
    const { kv } = await setup();
    const keys = Array.from({ length: 25 }, (_, i) => `key-${String(i).padStart(2, "0")}`);
    for (const key of keys) await kv.put("ns", key, text(key), {});
    const first = await kv.list("ns", { limit: 10 });
    assert.equal(first.list_complete, false);
    assert.deepEqual(first.keys.map((k) => k.name), keys.slice(0, 10));
    assert.ok(first.cursor !== undefined && !first.cursor.includes("key-"), "the cursor is opaque");
    // Between pages: a key before the cursor appears, one after it goes, one after it appears.
    await kv.put("ns", "key-00a", text("late"), {});
    await kv.delete("ns", "key-12");
    await kv.put("ns", "key-15a", text("new"), {});
    const second = await kv.list("ns", { limit: 10, cursor: first.cursor });
    assert.deepEqual(second.keys.map((k) => k.name), ["key-10", "key-11", "key-13", "key-14", "key-15", "key-15a", "key-16", "key-17", "key-18", "key-19"]);
    const third = await kv.list("ns", { limit: 10, cursor: second.cursor });
    assert.deepEqual(third.keys.map((k) => k.name), keys.slice(20));
    assert.equal(third.list_complete, true);
    assert.equal(third.cursor, undefined);
    await assert.rejects(kv.list("ns", { cursor: "not-a-cursor" }), { message: "KV GET failed: 400 Invalid cursor" });
  });

  it("lists 1000 keys by default and at most 1000, with Cloudflare's texts beyond", async () => {
    const { db, kv } = await setup();
    const rows = Array.from({ length: 1001 }, (_, i) => ({ account_id: "default", namespace: "big", key: `k${String(i).padStart(4, "0")}`, value: text("v"), metadata: null, expiration: null }));
    for (let i = 0; i < rows.length; i += 250) await db.insertInto("kv_entries").values(rows.slice(i, i + 250)).execute();
    const page = await kv.list("big", {});
    assert.equal(page.keys.length, 1000);
    assert.equal(page.list_complete, false);
    const rest = await kv.list("big", { cursor: page.cursor });
    assert.deepEqual(rest.keys.map((k) => k.name), ["k1000"]);
    assert.equal((await kv.list("big", { limit: 1000 })).keys.length, 1000);
    await assert.rejects(kv.list("big", { limit: 1001 }), { message: "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000." });
    await assert.rejects(kv.list("big", { limit: 0 }), { message: "KV GET failed: 400 Invalid key_count_limit of 0. Please specify an integer greater than 0." });
  });

  it("enforces key, value and metadata sizes with workerd's error texts", async () => {
    const { kv } = await setup();
    const longKey = "é".repeat(256) + "x"; // 513 UTF-8 bytes in 257 characters
    for (const [operation, call] of [
      ["GET", () => kv.get("ns", longKey)],
      ["PUT", () => kv.put("ns", longKey, text("v"), {})],
      ["DELETE", () => kv.delete("ns", longKey)],
      ["GET", () => kv.list("ns", { prefix: longKey })],
    ] as const) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof KvError);
        assert.equal(error.message, `KV ${operation} failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.`);
        return true;
      });
    }
    await kv.put("ns", "é".repeat(256), text("at the limit"), {});
    await assert.rejects(kv.put("ns", "", text("v"), {}), (error: unknown) => error instanceof WorkerCallError && error.errorName === "TypeError" && error.message === "Key name cannot be empty.");
    await assert.rejects(kv.get("ns", ".."), { message: 'KV GET failed: 400 Illegal key name "..". Please use a different name.' });

    const maximum = new Uint8Array(KV_LIMITS.maxValueBytes);
    maximum[maximum.length - 1] = 7;
    await kv.put("ns", "huge", maximum, {});
    const back = await kv.get("ns", "huge");
    assert.equal(back!.value.byteLength, KV_LIMITS.maxValueBytes);
    assert.equal(back!.value[KV_LIMITS.maxValueBytes - 1], 7);
    await assert.rejects(kv.put("ns", "huge", new Uint8Array(KV_LIMITS.maxValueBytes + 1), {}), {
      message: "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400.",
    });

    const fits = "m".repeat(1022); // JSON "…" is 1024 bytes
    await kv.put("ns", "meta", text("v"), { metadata: fits });
    assert.equal((await kv.get("ns", "meta"))!.metadata, fits);
    await assert.rejects(kv.put("ns", "meta", text("v"), { metadata: fits + "m" }), { message: "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024." });
  });

  it("keeps namespaces and accounts apart", async () => {
    const { db, kv } = await setup();
    await db.insertInto("accounts").values({ id: "other", name: "other", created_at: new Date().toISOString() }).execute();
    const other = createKvNamespaces(db, "other", { now: () => NOW_MS });
    await kv.put("ns", "k", text("default/ns"), {});
    await kv.put("ns2", "k", text("default/ns2"), {});
    await other.put("ns", "k", text("other/ns"), {});
    assert.equal(decode((await kv.get("ns", "k"))!.value), "default/ns");
    assert.equal(decode((await kv.get("ns2", "k"))!.value), "default/ns2");
    assert.equal(decode((await other.get("ns", "k"))!.value), "other/ns");
    await other.delete("ns", "k");
    assert.equal(decode((await kv.get("ns", "k"))!.value), "default/ns");
    assert.deepEqual((await other.list("ns", {})).keys, []);
  });
});

it("turns a worker's put options into an expiration with Cloudflare's rules and texts", () => {
  const now = NOW_MS / 1000;
  assert.equal(kvPutExpiration({}, NOW_MS), undefined);
  assert.equal(kvPutExpiration({ expirationTtl: 60 }, NOW_MS), now + 60);
  assert.equal(kvPutExpiration({ expirationTtl: 120, expiration: now + 9999 }, NOW_MS), now + 120, "the TTL wins");
  assert.equal(kvPutExpiration({ expiration: now + 60 }, NOW_MS), now + 60);
  assert.throws(() => kvPutExpiration({ expirationTtl: 30 }, NOW_MS), { message: "KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60." });
  assert.throws(() => kvPutExpiration({ expirationTtl: 0 }, NOW_MS), { message: "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0." });
  assert.throws(() => kvPutExpiration({ expiration: now }, NOW_MS), {
    message: `KV PUT failed: 400 Invalid expiration of ${now}. Please specify integer greater than the current number of seconds since the UNIX epoch.`,
  });
  assert.throws(() => kvPutExpiration({ expiration: now + 59 }, NOW_MS), {
    message: `KV PUT failed: 400 Invalid expiration of ${now + 59}. Expiration times must be at least 60 seconds in the future.`,
  });
});

it("bounds a prefix by incrementing its last code point", () => {
  assert.equal(prefixSuccessor("ab"), "ac");
  assert.equal(prefixSuccessor("a\u{10FFFF}"), "b");
  assert.equal(prefixSuccessor("\u{10FFFF}"), null);
  assert.equal(prefixSuccessor("x\uD7FF"), "x\uE000");
  assert.equal(prefixSuccessor("日"), "旦".slice(0, 0) + String.fromCodePoint("日".codePointAt(0)! + 1));
});
