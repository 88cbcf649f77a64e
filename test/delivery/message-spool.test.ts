/**
 * MessageSpool over a real temporary directory: what goes in comes out byte for byte, from
 * memory and from its spill file, whether it arrives as many network-sized chunks (fill, which
 * gathers spilled bytes into larger file writes) or as one write (a worker's hand-in, readable at
 * once); the size limit counts but never stores the excess; dispose removes the file.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { MessageSpool } from "../../src/delivery/message-spool.ts";
import { readSpooledCopy } from "../../src/delivery/spooled-copy.ts";

/** `total` random bytes in chunks of 1–`maxChunk` bytes, as a socket would hand them over. */
function chunked(total: number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let left = total;
  while (left > 0) {
    const size = Math.min(left, 1 + Math.floor(Math.random() * maxChunk));
    chunks.push(randomBytes(size));
    left -= size;
  }
  return chunks;
}

/** The pieces a reader gets, one 'data' event each, as the relay's pipe takes them (an async iterator would join what is buffered). */
function piecesOf(stream: Readable): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  stream.on("data", (piece: Buffer) => pieces.push(piece));
  return new Promise((resolve, reject) => {
    stream.once("end", () => resolve(pieces));
    stream.once("error", reject);
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

describe("MessageSpool", () => {
  let spoolDir: string;
  before(() => {
    spoolDir = mkdtempSync(join(tmpdir(), "mailroute-spool-test-"));
  });
  after(() => rmSync(spoolDir, { recursive: true, force: true }));

  it("returns a message filled from many small chunks byte for byte, memory part and spill file alike, to every reader", async () => {
    const chunks = chunked(3 * 1024 * 1024 + 12_345, 70_000);
    const whole = Buffer.concat(chunks);
    const spool = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir });
    await spool.fill(Readable.from(chunks));
    assert.equal(spool.size, whole.length);
    assert.equal(spool.sha256, createHash("sha256").update(whole).digest("hex"));
    const [file] = readdirSync(spoolDir);
    assert.ok(file !== undefined, "the message spilled to a file");
    assert.equal(statSync(join(spoolDir, file)).mode & 0o777, 0o600);
    const prefix = Buffer.from("Received: by test\r\n");
    const [first, second] = await Promise.all([readAll(spool.createReadStream()), readAll(spool.createReadStream(prefix))]);
    assert.ok(first.equals(whole), "first reader got the message");
    assert.ok(second.equals(Buffer.concat([prefix, whole])), "second reader got the prefix and the message");
    await spool.dispose();
    assert.deepEqual(readdirSync(spoolDir), [], "dispose removed the spill file");
  });

  it("reads a message held in memory in as few pieces as it takes at 64 KiB each, its prefix joined in: a small one in one (one write to the upstream)", async () => {
    for (const total of [1_300, 40_000, 200_000]) {
      const chunks = chunked(total, 1_500);
      const spool = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir });
      try {
        await spool.fill(Readable.from(chunks));
        const prefix = Buffer.from("ARC-Seal: i=1; a=rsa-sha256\r\nReceived: by test\r\n");
        const pieces = await piecesOf(spool.createReadStream(prefix));
        assert.ok(Buffer.concat(pieces).equals(Buffer.concat([prefix, ...chunks])), `${total} bytes: byte for byte`);
        // chunks of ≤ 1,500 bytes joined up to 64 KiB: the fewest pieces but one at most
        const fewest = Math.ceil((prefix.length + total) / (64 * 1024));
        assert.ok(pieces.length >= fewest && pieces.length <= fewest + 1, `${total} bytes from ${chunks.length} chunks read in ${pieces.length} pieces`);
        assert.ok(pieces.every((piece) => piece.length <= 64 * 1024));
      } finally {
        await spool.dispose();
      }
    }
  });

  it("names a spilled message for a reader elsewhere (spilled()): its memory part with the prefix, then exactly its file's bytes", async () => {
    const small = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir });
    await small.fill(Readable.from([randomBytes(1000)]));
    assert.equal(small.spilled(), null, "a message held in memory has no file to name");
    await small.dispose();
    const chunks = chunked(2 * 1024 * 1024 + 777, 70_000);
    const whole = Buffer.concat(chunks);
    const spool = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir });
    await spool.fill(Readable.from(chunks));
    const prefix = Buffer.from("Received: by test\r\n");
    const spilled = spool.spilled(prefix);
    assert.ok(spilled !== null);
    assert.equal(spilled.head.length + spilled.file.bytes, prefix.length + whole.length);
    const parts: Buffer[] = [];
    for await (const chunk of readSpooledCopy(spilled)) parts.push(chunk);
    assert.ok(Buffer.concat(parts).equals(Buffer.concat([prefix, whole])), "head and file read back are the message after the prefix");
    await spool.dispose();
    // once the spool is gone, its file is too: a late reader fails instead of reading nothing
    await assert.rejects(async () => {
      for await (const chunk of readSpooledCopy(spilled)) void chunk;
    }, /ENOENT/);
  });

  it("makes one direct write readable at once, also when it spills less than a file write's worth", async () => {
    for (const size of [100, 300 * 1024, 2 * 1024 * 1024]) {
      const raw = randomBytes(size);
      const spool = new MessageSpool({ maxSize: 10 * 1024 * 1024, spoolDir });
      await spool.write(raw);
      assert.ok((await readAll(spool.createReadStream())).equals(raw), `${size} bytes read back`);
      await spool.dispose();
    }
  });

  it("counts the bytes past maxSize but stores only maxSize of them", async () => {
    const chunks = chunked(1024 * 1024, 50_000);
    const whole = Buffer.concat(chunks);
    const maxSize = 700 * 1024 + 3;
    const spool = new MessageSpool({ maxSize, spoolDir });
    await spool.fill(Readable.from(chunks));
    assert.equal(spool.received, whole.length);
    assert.equal(spool.size, maxSize);
    assert.ok(spool.exceeded);
    assert.ok((await readAll(spool.createReadStream())).equals(whole.subarray(0, maxSize)));
    await spool.dispose();
  });
});
