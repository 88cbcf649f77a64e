/**
 * Workers' R2 bindings served from the store (cluster mode) against miniflare's own R2: the
 * same worker, on real workerd, runs the whole R2 API surface — put (text, bytes, stream, empty,
 * httpMetadata as an object and as Headers, customMetadata, md5 / sha256 supplied), get (whole,
 * offset/length, suffix, Range header, invalid ranges, onlyIf as an object and as Headers), head,
 * list (prefix, delimiter, cursor pages, startAfter, include, bad limits), delete of one and of
 * many, conditional puts, multipart (create, resume, upload, complete, abort, R2's refusals) and
 * R2's limits — and what it sees must be exactly what it sees on miniflare's R2, except for the
 * values R2 makes up (versions, times, upload ids, part etags).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { createR2Buckets } from "../../src/core/r2/r2-buckets.ts";
import { NO_PLATFORM_BINDINGS } from "../../src/workers/platform-bindings.ts";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";
import { fakeHost, SAMPLE_MESSAGE, workerDefinition } from "./fake-host.ts";

const ENVELOPE = { from: "alice@sender.example", to: "bob@example.com", raw: SAMPLE_MESSAGE };

const SURFACE = `export default { async email(message, env) {
  const B = env.BUCKET;
  const shape = (o) => o === null ? null : { key: o.key, size: o.size, etag: o.etag, httpEtag: o.httpEtag, checksums: o.checksums.toJSON(), httpMetadata: o.httpMetadata, customMetadata: o.customMetadata, range: o.range, storageClass: o.storageClass, hasBody: "body" in o };
  const step = async (label, run) => {
    let seen;
    try { seen = [label, await run()]; } catch (error) { seen = [label, { error: error.name + ": " + error.message }]; }
    // one line a step: the runtime keeps 8 KiB of each line
    console.log("seen " + JSON.stringify(seen));
  };
  const hex = async (algorithm, text) => [...new Uint8Array(await crypto.subtle.digest(algorithm, new TextEncoder().encode(text)))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const bytes = new Uint8Array(300000).map((_, i) => i % 251);

  await step("put text", async () => shape(await B.put("docs/a.txt", "hello, world", { httpMetadata: { contentType: "text/plain", cacheControl: "no-cache", contentDisposition: "inline", contentEncoding: "identity", contentLanguage: "en" }, customMetadata: { owner: "alice", "x-ünï": "çødé" } })));
  await step("put bytes", async () => shape(await B.put("docs/bytes.bin", bytes)));
  await step("put stream", async () => {
    const { readable, writable } = new FixedLengthStream(11);
    const writer = writable.getWriter();
    writer.write(new TextEncoder().encode("stream ")); writer.write(new TextEncoder().encode("body")); writer.close();
    return shape(await B.put("docs/stream.txt", readable));
  });
  await step("put nested", async () => shape(await B.put("docs/sub/deep.txt", "deep")));
  await step("put empty", async () => shape(await B.put("empty", "")));
  await step("put headers", async () => shape(await B.put("hdr", "x", { httpMetadata: new Headers({ "content-type": "image/png", "cache-control": "max-age=60" }) })));
  await step("put md5 right", async () => shape(await B.put("sum/md5", "abc", { md5: await hex("MD5", "abc") })));
  await step("put md5 wrong", async () => shape(await B.put("sum/md5", "abc", { md5: "00000000000000000000000000000000" })));
  await step("put sha256", async () => shape(await B.put("sum/sha256", "abc", { sha256: await hex("SHA-256", "abc") })));
  await step("put sha1 wrong", async () => shape(await B.put("sum/sha1", "abc", { sha1: "0000000000000000000000000000000000000000" })));
  await step("put key too long", async () => shape(await B.put("k".repeat(1025), "x")));
  await step("put key of 1024", async () => (await B.put("k".repeat(1024), "x")).key.length);

  await step("get whole", async () => { const o = await B.get("docs/a.txt"); return { ...shape(o), text: await o.text() }; });
  for (const range of [{ offset: 7 }, { offset: 7, length: 3 }, { length: 5 }, { suffix: 5 }, { suffix: 100 }, { offset: 0, length: 100 }]) {
    await step("get " + JSON.stringify(range), async () => { const o = await B.get("docs/a.txt", { range }); return { range: o.range, text: await o.text() }; });
  }
  await step("get Range header", async () => { const o = await B.get("docs/a.txt", { range: new Headers({ range: "bytes=2-4" }) }); return { range: o.range, text: await o.text() }; });
  await step("get offset past end", async () => shape(await B.get("docs/a.txt", { range: { offset: 100 } })));
  await step("get suffix 0", async () => shape(await B.get("docs/a.txt", { range: { suffix: 0 } })));
  await step("get bytes range", async () => { const o = await B.get("docs/bytes.bin", { range: { offset: 262140, length: 10 } }); return [...new Uint8Array(await o.arrayBuffer())]; });
  await step("get bytes whole", async () => { const got = new Uint8Array(await (await B.get("docs/bytes.bin")).arrayBuffer()); return got.length === bytes.length && got.every((b, i) => b === bytes[i]); });
  await step("get stream", async () => (await B.get("docs/stream.txt")).text());
  await step("get empty", async () => { const o = await B.get("empty"); return { ...shape(o), text: await o.text() }; });
  await step("get missing", async () => B.get("missing"));
  await step("head", async () => shape(await B.head("docs/a.txt")));
  await step("head missing", async () => B.head("missing"));
  await step("head key too long", async () => B.head("k".repeat(1025)));
  await step("writeHttpMetadata", async () => { const h = new Headers(); (await B.head("docs/a.txt")).writeHttpMetadata(h); return [...h]; });

  const etag = (await B.head("docs/a.txt")).etag;
  await step("get if etag matches", async () => shape(await B.get("docs/a.txt", { onlyIf: { etagMatches: etag } })));
  await step("get if etag matches not", async () => shape(await B.get("docs/a.txt", { onlyIf: { etagMatches: "nope" } })));
  await step("get If-None-Match header", async () => shape(await B.get("docs/a.txt", { onlyIf: new Headers({ "if-none-match": '"' + etag + '"' }) })));
  await step("get uploadedBefore epoch", async () => shape(await B.get("docs/a.txt", { onlyIf: { uploadedBefore: new Date(0) } })));
  await step("get uploadedAfter epoch", async () => shape(await B.get("docs/a.txt", { onlyIf: { uploadedAfter: new Date(0) } })));
  await step("put if absent, present", async () => shape(await B.put("docs/a.txt", "other", { onlyIf: { etagDoesNotMatch: "*" } })));
  await step("put if absent, absent", async () => shape(await B.put("docs/new.txt", "new", { onlyIf: { etagDoesNotMatch: "*" } })));
  await step("put if etag matches", async () => shape(await B.put("docs/new.txt", "newer", { onlyIf: { etagMatches: (await B.head("docs/new.txt")).etag } })));
  await step("text after conditional puts", async () => [await (await B.get("docs/a.txt")).text(), await (await B.get("docs/new.txt")).text()]);

  const keys = (listed) => ({ keys: listed.objects.map((o) => o.key), prefixes: listed.delimitedPrefixes, truncated: listed.truncated });
  await step("list all", async () => keys(await B.list()));
  await step("list prefix delimiter", async () => keys(await B.list({ prefix: "docs/", delimiter: "/" })));
  await step("list delimiter", async () => keys(await B.list({ delimiter: "/" })));
  await step("list pages", async () => {
    const pages = [];
    let cursor;
    for (let i = 0; i < 10; i++) {
      const page = await B.list({ limit: 3, cursor });
      pages.push(keys(page));
      if (!page.truncated) break;
      cursor = page.cursor;
    }
    return pages;
  });
  await step("list startAfter", async () => keys(await B.list({ startAfter: "docs/new.txt", prefix: "docs/" })));
  await step("list include", async () => (await B.list({ prefix: "docs/a", include: ["httpMetadata", "customMetadata"] })).objects.map(shape));
  await step("list without include", async () => (await B.list({ prefix: "docs/a" })).objects.map(shape));
  await step("list limit 0", async () => keys(await B.list({ limit: 0 })));
  await step("list limit 1001", async () => keys(await B.list({ limit: 1001 })));

  await step("delete one", async () => B.delete("empty"));
  await step("delete many", async () => B.delete(["docs/stream.txt", "hdr", "never-was"]));
  await step("after deletes", async () => keys(await B.list()));

  const upload = await B.createMultipartUpload("mp/video", { httpMetadata: { contentType: "video/mp4" }, customMetadata: { part: "all" } });
  await step("upload key", async () => upload.key);
  const p1 = await upload.uploadPart(1, new Uint8Array(5 * 1024 * 1024).fill(97));
  const resumed = B.resumeMultipartUpload("mp/video", upload.uploadId);
  const p2 = await resumed.uploadPart(2, "tail");
  await step("part numbers", async () => [p1.partNumber, p2.partNumber]);
  await step("complete", async () => shape(await resumed.complete([p1, p2])));
  await step("multipart head", async () => shape(await B.head("mp/video")));
  await step("multipart range across parts", async () => (await B.get("mp/video", { range: { offset: 5 * 1024 * 1024 - 2, length: 5 } })).text());
  await step("part after complete", async () => (await upload.uploadPart(3, "late")).partNumber);
  const small = await B.createMultipartUpload("mp/small");
  const s1 = await small.uploadPart(1, "tiny");
  const s2 = await small.uploadPart(2, "tail");
  await step("complete with a small part", async () => shape(await small.complete([s1, s2])));
  await step("complete with an unknown etag", async () => shape(await small.complete([{ partNumber: 1, etag: "bogus" }])));
  await step("abort", async () => small.abort());
  await step("part after abort", async () => (await small.uploadPart(3, "late")).partNumber);
  await step("resume unknown upload", async () => (await B.resumeMultipartUpload("mp/x", "no-such-upload").uploadPart(1, "x")).partNumber);
  await step("aborted object absent", async () => B.head("mp/small"));
} };`;

function worker(account: string, storageDir?: string): WorkerDefinition {
  return workerDefinition({ account, name: "r2-surface", bundle: SURFACE, platform: { ...NO_PLATFORM_BINDINGS, r2: [{ binding: "BUCKET", bucket: "surface" }] }, ...(storageDir === undefined ? {} : { storageDir }) });
}

function transcript(result: InvocationResult): [string, unknown][] {
  assert.equal(result.error, undefined, JSON.stringify(result));
  const lines = result.logs.filter((log) => log.message.startsWith("seen "));
  assert.ok(lines.length > 50, JSON.stringify(result.logs));
  return lines.map((line) => JSON.parse(line.message.slice(5)) as [string, unknown]);
}

let miniflareTranscript: [string, unknown][];

before(async () => {
  const storageDir = await mkdtemp(join(tmpdir(), "mailroute-r2-miniflare-"));
  const runtime = new WorkerRuntime();
  try {
    miniflareTranscript = transcript(await runtime.invoke(worker("r2-miniflare", storageDir), ENVELOPE, fakeHost()));
  } finally {
    await runtime.dispose();
    await rm(storageDir, { recursive: true, force: true });
  }
});

forEachDatabase((target) => {
  let runtime: WorkerRuntime | undefined;
  after(() => runtime?.dispose());

  it("gives a worker exactly what miniflare's R2 gives it, over the whole R2 API", async () => {
    const store = await target.open();
    const failures: unknown[] = [];
    runtime = new WorkerRuntime({ r2: (account) => createR2Buckets(store, account), onEvent: (event) => event.event === "worker-runtime.r2-failed" && failures.push(event) });
    const ours = transcript(await runtime.invoke(worker("r2-store"), ENVELOPE, fakeHost()));
    assert.deepEqual(failures, []);
    assert.deepEqual(ours.map(([label]) => label), miniflareTranscript.map(([label]) => label));
    for (const [index, [label, value]] of ours.entries()) assert.deepEqual(value, miniflareTranscript[index]![1], label);
    // and it was the store that answered: the objects are rows of this database
    const rows = await store.db.selectFrom("r2_objects").select(["account_id", "bucket", "key"]).orderBy("key").execute();
    assert.ok(rows.length > 5 && rows.every((row) => row.account_id === "r2-store" && row.bucket === "surface"), JSON.stringify(rows));
  });
});
