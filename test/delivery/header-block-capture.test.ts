import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { HeaderBlockCapture, HeaderBlockTooLarge } from "../../src/delivery/header-block-capture.ts";

/** Run `chunks` through a capture; returns what came out and the captured block. */
async function capture(chunks: readonly string[], limit = 1024): Promise<{ passed: string; block: string }> {
  const tee = new HeaderBlockCapture(limit);
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(chunks.map((chunk) => Buffer.from(chunk, "binary"))), tee, sink);
  return { passed: Buffer.concat(out).toString("binary"), block: tee.block.toString("binary") };
}

describe("HeaderBlockCapture", () => {
  it("keeps the header block up to and including the empty line, and passes every byte through", async () => {
    const message = "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n\r\nmore\r\n";
    const { passed, block } = await capture([message]);
    assert.equal(passed, message);
    assert.equal(block, "From: a@b.example\r\nSubject: x\r\n\r\n");
  });

  it("finds the empty line when it is split across chunks", async () => {
    for (const cut of [1, 2, 3]) {
      const head = "From: a@b.example\r\n\r\n";
      const at = head.length - cut;
      const { block } = await capture([head.slice(0, at), head.slice(at), "body\r\n"]);
      assert.equal(block, head, `cut ${cut} bytes before the end`);
    }
  });

  it("accepts bare LF line ends", async () => {
    assert.equal((await capture(["From: a@b.example\nSubject: x\n\nbody\n"])).block, "From: a@b.example\nSubject: x\n\n");
  });

  it("reads a message that starts with an empty line as having no header fields", async () => {
    assert.equal((await capture(["\r\nFrom: looks like a header but is body\r\n"])).block, "\r\n");
  });

  it("reads a message without an empty line as all header", async () => {
    assert.equal((await capture(["From: a@b.example\r\n", "Subject: x\r\n"])).block, "From: a@b.example\r\nSubject: x\r\n");
  });

  it("fails the stream instead of growing past its limit", async () => {
    await assert.rejects(capture(["X-Big: ", "y".repeat(100), "\r\n\r\n"], 64), HeaderBlockTooLarge);
    // a large body is fine: only the header block counts
    assert.equal((await capture(["From: a@b.example\r\n\r\n", "z".repeat(10_000)], 64)).block, "From: a@b.example\r\n\r\n");
  });

  it("with onBody, is a sink: every byte after the block goes to onBody, whatever the chunking, and none passes through", async () => {
    const message = "From: a@b.example\r\nSubject: x\r\n\r\nline one\r\n\r\nline two\r\n";
    for (const size of [1, 2, 5, 17, 1000]) {
      const body: Buffer[] = [];
      const sink = new HeaderBlockCapture(1024, { onBody: (chunk) => body.push(Buffer.from(chunk)) });
      let passed = 0;
      sink.on("data", (chunk: Buffer) => (passed += chunk.length));
      const chunks = Array.from({ length: Math.ceil(message.length / size) }, (_, i) => Buffer.from(message.slice(i * size, (i + 1) * size)));
      await pipeline(Readable.from(chunks), sink);
      assert.equal(sink.block.toString(), "From: a@b.example\r\nSubject: x\r\n\r\n", `chunks of ${size}`);
      assert.equal(Buffer.concat(body).toString(), "line one\r\n\r\nline two\r\n", `chunks of ${size}`);
      assert.equal(passed, 0);
    }
  });

  it("consume() takes chunks at once, as writing them would: the same block and body, and the limit", () => {
    const message = "From: a@b.example\r\nSubject: x\r\n\r\nline one\r\n\r\nline two\r\n";
    for (const size of [1, 2, 5, 17, 1000]) {
      const body: Buffer[] = [];
      const sink = new HeaderBlockCapture(1024, { onBody: (chunk) => body.push(Buffer.from(chunk)) });
      for (let at = 0; at < message.length; at += size) sink.consume(Buffer.from(message.slice(at, at + size)));
      assert.equal(sink.block.toString(), "From: a@b.example\r\nSubject: x\r\n\r\n", `chunks of ${size}`);
      assert.equal(Buffer.concat(body).toString(), "line one\r\n\r\nline two\r\n", `chunks of ${size}`);
    }
    const small = new HeaderBlockCapture(64, { onBody: () => undefined });
    assert.throws(() => small.consume(Buffer.from(`X-Big: ${"y".repeat(100)}\r\n\r\n`)), HeaderBlockTooLarge);
  });
});
