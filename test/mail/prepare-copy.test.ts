/**
 * prepareCopy hands the signer each copy in the cheapest form that is still the exact bytes: a
 * small copy whole, a spilled one named by its spool (the signing thread reads the file itself;
 * issue 11), and dispatches signatures + our headers + the body unchanged.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { SignRequest } from "../../src/delivery/message-signer.ts";
import { MessageSpool } from "../../src/delivery/message-spool.ts";
import { isSpooledCopy, readSpooledCopy } from "../../src/delivery/spooled-copy.ts";
import { messageFingerprint } from "../../src/delivery/message-fingerprint.ts";
import { bufferBody, prepareCopy, spoolBody, type CopyRequest } from "../../src/mail/prepare-copy.ts";

async function bytesOf(message: SignRequest["message"]): Promise<Buffer> {
  if (Buffer.isBuffer(message)) return message;
  const parts: Buffer[] = [];
  for await (const chunk of isSpooledCopy(message) ? readSpooledCopy(message) : message) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** A copy of `body` under our `headers`, to be signed for route.test. */
function copyRequest(headers: Buffer, body: CopyRequest["body"], contentSha256: string): CopyRequest {
  return {
    chains: [],
    envelopeFrom: "sender@origin.test",
    headers,
    body,
    routingDomain: "route.test",
    sign: true,
    seal: null,
    identity: { messageId: null, mailFrom: "sender@origin.test", recipients: ["a@route.test"], contentSha256 },
  };
}

describe("prepareCopy", () => {
  let spoolDir: string;
  before(() => {
    spoolDir = mkdtempSync(join(tmpdir(), "mailroute-prepare-copy-"));
  });
  after(() => rmSync(spoolDir, { recursive: true, force: true }));

  for (const [label, size, form] of [
    ["a small message", 10_000, "buffer"],
    ["a spilled message", 3 * 1024 * 1024, "spooled"],
  ] as const) {
    it(`gives the signer ${label} as ${form === "buffer" ? "one Buffer" : "its spool's name, not a stream the SMTP thread reads"}, and dispatches exactly the signed bytes`, async () => {
      const body = Buffer.alloc(size, "x");
      for (let at = 76; at < body.length; at += 78) body.write("\r\n", at);
      const spool = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir });
      try {
        await spool.fill(Readable.from([body]));
        const headers = Buffer.from("Received: by mx.test\r\n");
        const seen: SignRequest["message"][] = [];
        const signature = Buffer.from("DKIM-Signature: test\r\n");
        const copy = copyRequest(headers, spoolBody(spool), spool.sha256);
        const prepared = await prepareCopy(copy, async (request) => {
          seen.push(request.message);
          assert.ok((await bytesOf(request.message)).equals(Buffer.concat([headers, body])), "the signer reads our headers and the body");
          return { headers: signature, dkim: [], arc: null, skipped: [] };
        });
        assert.equal(seen.length, 1);
        assert.equal(form === "buffer" ? Buffer.isBuffer(seen[0]) : isSpooledCopy(seen[0]), true, `signer got ${form}`);
        assert.ok((await bytesOf(prepared.request.message())).equals(Buffer.concat([signature, headers, body])), "dispatched: signature, our headers, the body");
        assert.equal(prepared.request.size, signature.length + headers.length + body.length);
      } finally {
        await spool.dispose();
      }
    });
  }

  it("dispatches a small copy held in a Buffer as one piece (one write to the upstream), a large one in views of at most 64 KiB", async () => {
    for (const [size, fewest] of [[3_000, 1], [300_000, 5]] as const) {
      const body = Buffer.alloc(size, "y");
      const headers = Buffer.from("Received: by mx.test\r\n");
      const signature = Buffer.from("DKIM-Signature: test\r\n");
      const copy = copyRequest(headers, bufferBody(body), "0".repeat(64));
      const prepared = await prepareCopy(copy, async () => ({ headers: signature, dkim: [], arc: null, skipped: [] }));
      // one 'data' event each, as the relay's pipe takes them (an async iterator would join what is buffered)
      const stream = prepared.request.message();
      const pieces: Buffer[] = [];
      stream.on("data", (piece: Buffer) => pieces.push(piece));
      await new Promise((resolve) => stream.once("end", resolve));
      assert.ok(Buffer.concat(pieces).equals(Buffer.concat([signature, headers, body])), `${size} bytes: byte for byte`);
      assert.equal(pieces.length, fewest + (size > 64 * 1024 ? 1 : 0), `${size} bytes in ${pieces.length} pieces`);
    }
  });

  it("fingerprints the copy from its identity, or takes the fingerprint its caller already made (a forward's, read ahead)", async () => {
    const identity = { messageId: "<m1@origin.test>", mailFrom: "sender@origin.test", recipients: ["a@route.test"], contentSha256: "0".repeat(64) };
    const copy: CopyRequest = { chains: [], envelopeFrom: "sender@origin.test", headers: Buffer.alloc(0), body: bufferBody(Buffer.from("hi\r\n")), routingDomain: "route.test", sign: false, seal: null, identity };
    assert.equal((await prepareCopy(copy, null)).request.fingerprint, messageFingerprint(identity));
    assert.equal((await prepareCopy({ ...copy, fingerprint: "made-before" }, null)).request.fingerprint, "made-before");
  });
});
