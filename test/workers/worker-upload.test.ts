import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeMissing, sortUploadBindings } from "../../src/workers/platform-bindings.ts";
import { parseWorkerUpload } from "../../src/workers/worker-upload.ts";

/** A script upload as wrangler writes it (multipart form: metadata, then one part per module). */
async function upload(metadata: unknown, parts: { name: string; type: string; body: string }[]): Promise<Uint8Array> {
  const form = new FormData();
  form.set("metadata", JSON.stringify(metadata));
  for (const part of parts) form.set(part.name, new Blob([part.body], { type: part.type }), part.name);
  return new Uint8Array(await new Response(form).arrayBuffer());
}

describe("reading a Workers script upload", () => {
  it("puts the main module first, types modules by content type, drops source maps, and keeps the bindings", async () => {
    const body = await upload({ main_module: "index.js", compatibility_date: "2024-09-23", compatibility_flags: ["nodejs_compat"], bindings: [{ name: "A", type: "plain_text", text: "x" }] }, [
      { name: "./greeting.txt", type: "text/plain", body: "hi" },
      { name: "index.js", type: "application/javascript+module", body: "export default {}" },
      { name: "index.js.map", type: "application/source-map", body: "{}" },
      { name: "blob.bin", type: "application/octet-stream", body: "\u0001" },
    ]);
    const parsed = await parseWorkerUpload(body);
    assert.deepEqual(parsed.modules.map((m) => [m.name, m.type]), [["index.js", "ESModule"], ["greeting.txt", "Text"], ["blob.bin", "Data"]]);
    assert.equal(Buffer.from(parsed.modules[1]!.base64, "base64").toString(), "hi");
    assert.deepEqual({ date: parsed.compatibilityDate, flags: parsed.compatibilityFlags, bindings: parsed.bindings }, { date: "2024-09-23", flags: ["nodejs_compat"], bindings: [{ name: "A", type: "plain_text", text: "x" }] });
  });

  it("reads keep_bindings (wrangler deploy --keep-vars), and none when absent", async () => {
    const part = [{ name: "index.js", type: "application/javascript+module", body: "export default {}" }];
    assert.deepEqual((await parseWorkerUpload(await upload({ main_module: "index.js", keep_bindings: ["plain_text", "json"] }, part))).keepBindings, ["plain_text", "json"]);
    assert.deepEqual((await parseWorkerUpload(await upload({ main_module: "index.js" }, part))).keepBindings, []);
  });

  it("refuses service-worker scripts, unknown module types and a missing main module, naming them", async () => {
    await assert.rejects(parseWorkerUpload(await upload({ body_part: "script" }, [{ name: "script", type: "application/javascript", body: "" }])), /service-worker scripts/);
    await assert.rejects(parseWorkerUpload(await upload({ main_module: "index.py" }, [{ name: "index.py", type: "text/x-python", body: "" }])), /module "index.py" has content type "text\/x-python"/);
    await assert.rejects(parseWorkerUpload(await upload({ main_module: "main.js" }, [{ name: "other.js", type: "application/javascript+module", body: "" }])), /the main module "main.js" is not among the uploaded parts/);
    await assert.rejects(parseWorkerUpload(new TextEncoder().encode("not a form")), /does not start with a multipart boundary/);
  });
});

describe("sorting an upload's bindings", () => {
  it("puts each binding in one place and keeps the ones mailroute cannot provide as missing", () => {
    const sorted = sortUploadBindings([
      { name: "S", type: "plain_text", text: "v" },
      { name: "J", type: "json", json: { a: 1 } },
      { name: "KV", type: "kv_namespace", namespace_id: "ns" },
      { name: "MAIL", type: "send_email", allowed_destination_addresses: ["a@x.test"] },
      { name: "DB", type: "d1", id: "db-1" },
      { name: "B", type: "r2_bucket", bucket_name: "files" },
      { name: "Q", type: "queue", queue_name: "jobs" },
      { name: "AE", type: "analytics_engine", dataset: "stats" },
      { name: "AI", type: "ai" },
      { name: "DO", type: "durable_object_namespace", class_name: "C" },
    ]);
    assert.deepEqual(sorted.vars, { S: "v", J: { a: 1 } });
    assert.deepEqual(sorted.kv, [{ binding: "KV", namespace: "ns" }]);
    assert.deepEqual(sorted.sendEmail, [{ name: "MAIL", allowedDestinationAddresses: ["a@x.test"] }]);
    assert.deepEqual(sorted.platform, {
      d1: [{ binding: "DB", databaseId: "db-1" }],
      r2: [{ binding: "B", bucket: "files" }],
      queues: [{ binding: "Q", queue: "jobs" }],
      analytics: [{ binding: "AE", dataset: "stats" }],
      ai: [],
      missing: [{ binding: "AI", type: "ai" }, { binding: "DO", type: "durable_object_namespace" }],
    });
    assert.equal(describeMissing(sorted.platform.missing), "AI (ai: no model runs here), DO (durable_object_namespace)");
    assert.throws(() => sortUploadBindings([{ name: "B", type: "r2_bucket" }]), { message: "binding B: bucket_name is required" });
  });
});
