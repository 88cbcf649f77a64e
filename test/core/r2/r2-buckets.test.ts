/**
 * R2 buckets in the store, on both databases: values streamed in and out in chunks (ranges
 * across chunk and part boundaries), multipart uploads with R2's rules, listing with a
 * delimiter and cursors, conditional writes that hold across connections, account isolation,
 * and the sweep that frees bytes nothing uses any more.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { it } from "node:test";
import { createR2Buckets, RELEASED_GRACE_MS, storeR2, sweepR2, UPLOAD_LIFETIME_MS } from "../../../src/core/r2/r2-buckets.ts";
import { R2_CHUNK_BYTES } from "../../../src/store/repositories/r2-blob-repository.ts";
import { R2Error, type R2ErrorName, R2_ERRORS } from "../../../src/workers/r2-errors.ts";
import type { R2Buckets, R2Value } from "../../../src/workers/r2-types.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

/** `bytes` as a body arriving in pieces of `piece` bytes (as a socket delivers it). */
function value(bytes: Uint8Array, piece = 64 * 1024): R2Value {
  return {
    size: bytes.byteLength,
    body: (async function* () {
      for (let at = 0; at < bytes.byteLength; at += piece) yield bytes.subarray(at, at + piece);
    })(),
  };
}

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

async function read(buckets: R2Buckets, bucket: string, key: string, range?: { offset: number; length: number }): Promise<Buffer> {
  const found = await buckets.get(bucket, key);
  assert.ok(found, `${bucket}/${key} exists`);
  return bytesOf(found.read(range ?? { offset: 0, length: found.object.size }));
}

const refusedWith = (name: R2ErrorName) => (error: unknown) => error instanceof R2Error && error.entry.v4code === R2_ERRORS[name].v4code && error.message === R2_ERRORS[name].message;
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

forEachDatabase((target) => {
  it("stores a value in 256 KiB chunks and reads back any range of it, one chunk at a time", async () => {
    const store = await target.open();
    const buckets = createR2Buckets(store, "acct-a");
    const data = randomBytes(3 * R2_CHUNK_BYTES + 12_345);
    const object = await buckets.put("photos", "a/b.bin", value(data, 100_000), { httpMetadata: { contentType: "application/octet-stream" }, customMetadata: { who: "test" } });
    assert.equal(object.etag, md5(data));
    assert.deepEqual(object.checksums, { md5: md5(data) });
    const chunks = await store.db.selectFrom("r2_blob_chunks").select((eb) => eb.fn.count<number>("seq").as("n")).executeTakeFirstOrThrow();
    assert.equal(Number(chunks.n), 4);
    assert.deepEqual(await read(buckets, "photos", "a/b.bin"), data);
    for (const range of [{ offset: 0, length: 1 }, { offset: R2_CHUNK_BYTES - 3, length: 10 }, { offset: R2_CHUNK_BYTES, length: R2_CHUNK_BYTES }, { offset: 2 * R2_CHUNK_BYTES + 5, length: R2_CHUNK_BYTES + 12_340 }]) {
      assert.deepEqual(await read(buckets, "photos", "a/b.bin", range), data.subarray(range.offset, range.offset + range.length), JSON.stringify(range));
    }
    const head = await buckets.head("photos", "a/b.bin");
    assert.deepEqual({ ...head, version: undefined, uploaded: undefined }, { key: "a/b.bin", size: data.length, etag: md5(data), httpMetadata: { contentType: "application/octet-stream" }, customMetadata: { who: "test" }, checksums: { md5: md5(data) }, version: undefined, uploaded: undefined });
    assert.equal(await buckets.head("photos", "missing"), null);
    assert.equal(await buckets.get("photos", "missing"), null);
  });

  it("checks supplied checksums, keeps them, and refuses a body that is not its announced size", async () => {
    const buckets = createR2Buckets(await target.open(), "acct-a");
    const data = Buffer.from("checksummed");
    const sha256 = createHash("sha256").update(data).digest();
    const object = await buckets.put("b", "k", value(data), { checksums: { md5: createHash("md5").update(data).digest(), sha256 } });
    assert.deepEqual(object.checksums, { md5: md5(data), sha256: sha256.toString("hex") });
    await assert.rejects(buckets.put("b", "k", value(data), { checksums: { sha1: Buffer.alloc(20) } }), (error) => error instanceof R2Error && error.entry.v4code === 10037 && /SHA-1 checksum you specified did not match/.test(error.message));
    assert.equal((await buckets.head("b", "k"))?.etag, md5(data), "the refused put changed nothing");
    await assert.rejects(buckets.put("b", "short", { size: 10, body: value(Buffer.from("abc")).body }), /ended after 3 of its announced 10 bytes/);
    await assert.rejects(buckets.put("b", "long", { size: 2, body: value(Buffer.from("abc")).body }), /longer than its announced 2 bytes/);
  });

  it("keeps R2's limits: key length, object size, custom metadata size", async () => {
    const buckets = createR2Buckets(await target.open(), "acct-a", { maxObjectBytes: 1000 });
    await assert.rejects(buckets.put("b", "k".repeat(1025), value(Buffer.from("x"))), refusedWith("invalidObjectName"));
    await assert.rejects(buckets.head("b", "é".repeat(513)), refusedWith("invalidObjectName"));
    await assert.rejects(buckets.put("b", "big", value(Buffer.alloc(1001))), refusedWith("entityTooLarge"));
    await assert.rejects(buckets.put("b", "meta", value(Buffer.from("x")), { customMetadata: { k: "v".repeat(2048) } }), refusedWith("metadataTooLarge"));
    await buckets.put("b", "k".repeat(1024), value(Buffer.alloc(1000)));
  });

  it("applies onlyIf on get and put, and two create-if-absent puts through two connections let exactly one win", async () => {
    const store = await target.open();
    const buckets = createR2Buckets(store, "acct-a");
    const first = await buckets.put("b", "doc", value(Buffer.from("v1")));
    await assert.rejects(buckets.put("b", "doc", value(Buffer.from("v2")), { onlyIf: { etagMatches: [{ type: "strong", value: "nope" }] } }), refusedWith("preconditionFailed"));
    await buckets.put("b", "doc", value(Buffer.from("v2")), { onlyIf: { etagMatches: [{ type: "strong", value: first.etag }] } });
    await assert.rejects(buckets.get("b", "doc", { etagDoesNotMatch: [{ type: "wildcard" }] }), (error) => refusedWith("preconditionFailed")(error) && (error as R2Error).object !== undefined);
    assert.ok(await buckets.get("b", "doc", { uploadedAfter: Date.now() - 60_000 }));
    await assert.rejects(buckets.get("b", "doc", { uploadedBefore: Date.now() - 60_000 }), refusedWith("preconditionFailed"));

    const other = createR2Buckets(await target.open(), "acct-a");
    const absent = { etagDoesNotMatch: [{ type: "wildcard" as const }] };
    const outcomes = await Promise.allSettled([buckets.put("b", "race", value(Buffer.from("one")), { onlyIf: absent }), other.put("b", "race", value(Buffer.from("two")), { onlyIf: absent })]);
    assert.deepEqual(outcomes.map((outcome) => outcome.status).sort(), ["fulfilled", "rejected"]);
    const loser = outcomes.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
    assert.ok(refusedWith("preconditionFailed")(loser.reason), String(loser.reason));
    const winner = (outcomes.find((outcome) => outcome.status === "fulfilled") as PromiseFulfilledResult<{ etag: string }>).value;
    assert.equal((await buckets.head("b", "race"))?.etag, winner.etag);
  });

  it("lists in byte order under a prefix, folding delimited prefixes, with cursors that never repeat an entry", async () => {
    const buckets = createR2Buckets(await target.open(), "acct-a");
    const keys = ["a", "dir/x/1", "dir/x/2", "dir/y", "dir/z/9", "dir/é", "dir/Z", "e"];
    for (const key of keys) await buckets.put("b", key, value(Buffer.from(key)), { customMetadata: { key } });
    const all = await buckets.list("b");
    assert.deepEqual(all.objects.map((object) => object.key), ["a", "dir/Z", "dir/x/1", "dir/x/2", "dir/y", "dir/z/9", "dir/é", "e"]);
    assert.deepEqual(all.objects[0]?.customMetadata, {}, "metadata only when included");
    const folded = await buckets.list("b", { prefix: "dir/", delimiter: "/", include: ["customMetadata"] });
    assert.deepEqual({ keys: folded.objects.map((object) => object.key), prefixes: folded.delimitedPrefixes, truncated: folded.truncated }, { keys: ["dir/Z", "dir/y", "dir/é"], prefixes: ["dir/x/", "dir/z/"], truncated: false });
    assert.deepEqual(folded.objects[0]?.customMetadata, { key: "dir/Z" });
    const pages: string[][] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const listed = await buckets.list("b", { prefix: "dir/", delimiter: "/", limit: 2, ...(cursor === undefined ? {} : { cursor }) });
      pages.push([...listed.objects.map((object) => object.key), ...listed.delimitedPrefixes]);
      if (!listed.truncated) break;
      cursor = listed.cursor;
    }
    assert.deepEqual(pages, [["dir/Z", "dir/x/"], ["dir/y", "dir/z/"], ["dir/é"]]);
    assert.deepEqual((await buckets.list("b", { startAfter: "dir/z/9" })).objects.map((object) => object.key), ["dir/é", "e"]);
    await assert.rejects(buckets.list("b", { limit: 0 }), refusedWith("invalidMaxKeys"));
    await assert.rejects(buckets.list("b", { limit: 1001 }), refusedWith("invalidMaxKeys"));
    await buckets.delete("b", ["a", "e", "never-was"]);
    assert.deepEqual((await buckets.list("b", { delimiter: "/" })).delimitedPrefixes, ["dir/"]);
    assert.deepEqual((await buckets.list("b", { delimiter: "/" })).objects, []);
  });

  it("completes a multipart upload from parts sent through different connections, with R2's etag and part rules", async () => {
    const options = { minPartBytes: 300_000 };
    const a = createR2Buckets(await target.open(), "acct-a", options);
    const b = createR2Buckets(await target.open(), "acct-a", options);
    const parts = [randomBytes(300_000), randomBytes(300_000), randomBytes(1234)];
    const { uploadId } = await a.createMultipartUpload("b", "big", { httpMetadata: { contentType: "video/mp4" }, customMetadata: { by: "a" } });
    const third = await b.uploadPart("b", "big", uploadId, 3, value(parts[2]!));
    const first = await a.uploadPart("b", "big", uploadId, 1, value(randomBytes(300_000)));
    const again = await b.uploadPart("b", "big", uploadId, 1, value(parts[0]!));
    const second = await a.uploadPart("b", "big", uploadId, 2, value(parts[1]!));
    await assert.rejects(b.completeMultipartUpload("b", "big", uploadId, [{ part: 1, etag: first.etag }, { part: 2, etag: second.etag }, { part: 3, etag: third.etag }]), refusedWith("invalidPart"), "the replaced part's etag no longer counts");
    const object = await b.completeMultipartUpload("b", "big", uploadId, [{ part: 3, etag: third.etag }, { part: 1, etag: again.etag }, { part: 2, etag: second.etag }]);
    const whole = Buffer.concat(parts);
    const expectedEtag = `${createHash("md5").update(Buffer.concat(parts.map((part) => createHash("md5").update(part).digest()))).digest("hex")}-3`;
    assert.deepEqual({ etag: object.etag, size: object.size, http: object.httpMetadata, custom: object.customMetadata }, { etag: expectedEtag, size: whole.length, http: { contentType: "video/mp4" }, custom: { by: "a" } });
    assert.deepEqual(await read(a, "b", "big"), whole);
    const across = { offset: 300_000 - 10, length: 300_020 };
    assert.deepEqual(await read(a, "b", "big", across), whole.subarray(across.offset, across.offset + across.length), "a range across part boundaries");
    await assert.rejects(a.uploadPart("b", "big", uploadId, 4, value(Buffer.from("late"))), refusedWith("noSuchUpload"));
    await assert.rejects(a.completeMultipartUpload("b", "big", uploadId, [{ part: 1, etag: again.etag }]), refusedWith("noSuchUpload"));
  });

  it("refuses a completion R2 refuses: small parts, uneven parts, unknown parts, unknown uploads; abort drops the parts", async () => {
    const buckets = createR2Buckets(await target.open(), "acct-a", { minPartBytes: 100 });
    const { uploadId } = await buckets.createMultipartUpload("b", "m");
    const small = await buckets.uploadPart("b", "m", uploadId, 1, value(Buffer.alloc(99)));
    const tail = await buckets.uploadPart("b", "m", uploadId, 2, value(Buffer.alloc(10)));
    await assert.rejects(buckets.completeMultipartUpload("b", "m", uploadId, [{ part: 1, etag: small.etag }, { part: 2, etag: tail.etag }]), refusedWith("entityTooSmall"));
    const big = await buckets.uploadPart("b", "m", uploadId, 1, value(Buffer.alloc(100)));
    const uneven = await buckets.uploadPart("b", "m", uploadId, 2, value(Buffer.alloc(101)));
    const last = await buckets.uploadPart("b", "m", uploadId, 3, value(Buffer.alloc(1)));
    await assert.rejects(buckets.completeMultipartUpload("b", "m", uploadId, [{ part: 1, etag: big.etag }, { part: 2, etag: uneven.etag }, { part: 3, etag: last.etag }]), refusedWith("badUpload"));
    await assert.rejects(buckets.completeMultipartUpload("b", "m", uploadId, [{ part: 9, etag: big.etag }]), refusedWith("invalidPart"));
    await assert.rejects(buckets.uploadPart("b", "m", uploadId, 10_001, value(Buffer.alloc(1))), refusedWith("invalidPartNumber"));
    await assert.rejects(buckets.uploadPart("b", "m", "no-such-upload", 1, value(Buffer.alloc(1))), refusedWith("noSuchUpload"));
    await assert.rejects(buckets.uploadPart("b", "other-key", uploadId, 1, value(Buffer.alloc(1))), refusedWith("noSuchUpload"), "an upload belongs to its key");
    await buckets.abortMultipartUpload("b", "m", uploadId);
    await buckets.abortMultipartUpload("b", "m", uploadId);
    await assert.rejects(buckets.uploadPart("b", "m", uploadId, 1, value(Buffer.alloc(1))), refusedWith("noSuchUpload"));
    assert.equal(await buckets.head("b", "m"), null);
  });

  it("keeps each account's buckets apart, even under the same bucket name", async () => {
    const store = await target.open();
    const a = createR2Buckets(store, "acct-a");
    const b = createR2Buckets(store, "acct-b");
    await a.put("shared-name", "secret.txt", value(Buffer.from("a's")));
    assert.equal(await b.head("shared-name", "secret.txt"), null);
    assert.equal(await b.get("shared-name", "secret.txt"), null);
    assert.deepEqual((await b.list("shared-name")).objects, []);
    await b.delete("shared-name", ["secret.txt"]);
    const { uploadId } = await a.createMultipartUpload("shared-name", "up");
    await assert.rejects(b.uploadPart("shared-name", "up", uploadId, 1, value(Buffer.from("x"))), refusedWith("noSuchUpload"));
    await assert.rejects(b.abortMultipartUpload("shared-name", "up", uploadId), refusedWith("noSuchUpload"));
    assert.deepEqual(await read(a, "shared-name", "secret.txt"), Buffer.from("a's"));
  });

  it("lets a read begun before an overwrite finish on the old bytes; the sweep frees them only after the grace period", async () => {
    const store = await target.open();
    let now = Date.parse("2026-05-01T00:00:00Z");
    const buckets = createR2Buckets(store, "acct-a", { now: () => now });
    const old = randomBytes(2 * R2_CHUNK_BYTES + 7);
    await buckets.put("b", "k", value(old));
    const reading = await buckets.get("b", "k");
    assert.ok(reading);
    await buckets.put("b", "k", value(Buffer.from("new")));
    await buckets.delete("b", ["k"]);
    assert.deepEqual(await bytesOf(reading.read({ offset: 0, length: old.length })), old);
    const { uploadId } = await buckets.createMultipartUpload("b", "abandoned");
    await buckets.uploadPart("b", "abandoned", uploadId, 1, value(Buffer.from("part")));
    const count = async () => Number((await store.db.selectFrom("r2_blob_chunks").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n);
    assert.equal(await count(), 5);
    assert.equal(await sweepR2(store.db, new Date(now + RELEASED_GRACE_MS - 1000)), 0, "within the grace period nothing goes");
    assert.equal(await sweepR2(store.db, new Date(now + RELEASED_GRACE_MS + 1000)), 2, "both released values go after it");
    assert.equal(await count(), 1, "the unfinished upload's part stays");
    now += UPLOAD_LIFETIME_MS + 1000;
    await sweepR2(store.db, new Date(now));
    assert.equal(await sweepR2(store.db, new Date(now + RELEASED_GRACE_MS + 1000)), 1, "an upload left for a week is ended and its part freed");
    assert.equal(await count(), 0);
    assert.equal((await store.db.selectFrom("r2_uploads").selectAll().execute()).length, 0);
  });

  it("serves R2 from the store only when the store is PostgreSQL (cluster mode)", async () => {
    const store = await target.open();
    assert.equal(storeR2(store) === undefined, target.label === "sqlite");
  });
});
