import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { capHeaderSection } from "../../src/inbound/header-cap.ts";

async function collect(stream: Readable | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(stream)) return stream;
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** A source that hands over `text` in pieces of `size` bytes, and says when it was read to the end. */
function source(text: string, size: number): Readable {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

const HEADER = "From: a@x.example\r\nSubject: hello\r\n";
const MESSAGE = `${HEADER}\r\nbody line\r\n`;

describe("capping the header section a verifier reads", () => {
  it("passes a message within the cap through unchanged, whatever the chunking", async () => {
    for (const size of [1, 2, 3, 7, 64, 1024]) {
      const capped = capHeaderSection(source(MESSAGE, size), 64);
      assert.equal((await collect(capped.message)).toString(), MESSAGE, `chunks of ${size}`);
      assert.equal(capped.overflowed(), false);
    }
  });

  it("hands a Buffer within the cap back as it is, without a copy", () => {
    const message = Buffer.from(MESSAGE);
    assert.equal(capHeaderSection(message, 64).message, message);
  });

  it("cuts a longer header section at a line end, ends it with an empty line and drops the body", async () => {
    const long = `${HEADER}X-Filler: ${"y".repeat(100)}\r\nX-More: z\r\n\r\nbody\r\n`;
    const original = source(long, 16);

    const capped = capHeaderSection(original, 60);
    const seen = (await collect(capped.message)).toString();

    assert.equal(seen, `${HEADER}\r\n`);
    assert.equal(capped.overflowed(), true);
    assert.equal(original.readableEnded, true, "the source is still read to its end");
    assert.equal(capHeaderSection(Buffer.from(long), 60).message.toString(), `${HEADER}\r\n`);
  });

  it("caps a message that is all header with no empty line at all", async () => {
    const headerOnly = `${HEADER}${"X-Filler: aaaaaaaaaa\r\n".repeat(20)}`;
    const capped = capHeaderSection(source(headerOnly, 50), 100);

    assert.equal((await collect(capped.message)).toString().endsWith("\r\n\r\n"), true);
    assert.equal(capped.overflowed(), true);
  });

  it("treats a bare-LF empty line as the end of the header, as mailauth does, but not CR CR LF", async () => {
    const bareLf = capHeaderSection(source("From: a@x.example\n\nbody that is long enough to pass the cap\n", 5), 20);
    assert.equal(bareLf.overflowed(), false);
    await collect(bareLf.message);

    const crcrlf = capHeaderSection(source(`From: a@x.example\r\n\r\r\n${"X: y\r\n".repeat(10)}\r\nbody`, 5), 30);
    await collect(crcrlf.message);
    assert.equal(crcrlf.overflowed(), true, "\\r\\r\\n does not end the section, so it cannot slip past the cap");
  });

  it("lets a message with an empty header section through", async () => {
    const capped = capHeaderSection(source(`\r\n${"body ".repeat(50)}`, 8), 10);
    assert.equal((await collect(capped.message)).length, 2 + 250);
  });

  it("passes on an error of the source", async () => {
    const failing = new Readable({ read() {} });
    const capped = capHeaderSection(failing, 100);
    setImmediate(() => failing.destroy(new Error("spool read failed")));
    await assert.rejects(collect(capped.message), /spool read failed/);
  });

  it("with bodyOnlyIfSigned, hands on only the header section of an unsigned message, and lets the source go", async () => {
    for (const size of [1, 3, 7, 64, 1024]) {
      const from = source(MESSAGE + "more body\r\n".repeat(1000), size);
      const capped = capHeaderSection(from, 1024, { bodyOnlyIfSigned: true });
      assert.equal((await collect(capped.message)).toString(), `${HEADER}\r\n`, `chunks of ${size}`);
      assert.ok(from.destroyed, "the rest of the body is not read");
    }
    const buffer = Buffer.from(MESSAGE);
    assert.equal(capHeaderSection(buffer, 1024, { bodyOnlyIfSigned: true }).message.toString(), `${HEADER}\r\n`);
  });

  it("with bodyOnlyIfSigned, hands on the whole message when a DKIM-Signature or ARC field could need the body", async () => {
    for (const field of ["DKIM-Signature: v=1; a=rsa-sha256; bh=x", "dkim-signature : v=1", "ARC-Message-Signature: i=1; bh=x", "ARC-Seal: i=1"]) {
      // the field after another, and folded, so it begins mid-stream for small chunks
      const signed = `Received: by x\r\n${field};\r\n\tb=abc\r\n${MESSAGE}`;
      for (const size of [1, 5, 13, 4096]) {
        const capped = capHeaderSection(source(signed, size), 4096, { bodyOnlyIfSigned: true });
        assert.equal((await collect(capped.message)).toString(), signed, `${field} in chunks of ${size}`);
      }
      assert.equal(capHeaderSection(Buffer.from(signed), 4096, { bodyOnlyIfSigned: true }).message.toString(), signed);
    }
    // a folded line that merely mentions the name does not start the field
    const mention = `Subject: about\r\n DKIM-Signature: nothing\r\n${MESSAGE}`;
    assert.equal((await collect(capHeaderSection(source(mention, 4), 4096, { bodyOnlyIfSigned: true }).message)).toString(), mention.slice(0, mention.indexOf("\r\n\r\n") + 4));
  });
});
