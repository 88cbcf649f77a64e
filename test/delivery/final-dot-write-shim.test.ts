/**
 * nodemailer's dot-stuffing stream with the final-dot write (src/delivery/final-dot-write-shim.ts)
 * hands on a message's last chunk and the final dot as one Buffer, so the upstream gets one write
 * for both, and otherwise emits exactly what nodemailer's own stream emits: random input full of
 * dots, CRs and LFs, in random chunks, through a stream as shipped and one with nodemailer's own
 * push and _flush put back; the bytes out and the byte counters must be identical.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { installDotStuffingShim } from "../../src/delivery/dot-stuffing-shim.ts";
import { installFinalDotWriteShim, JOIN_BYTES } from "../../src/delivery/final-dot-write-shim.ts";
import { dataStreamOutput, type DataStreamLike } from "../support/data-stream-output.ts";
import { randomChunks, randomPieces, seededRandom } from "../support/seeded-random.ts";

const require = createRequire(import.meta.url);
interface HoldingDataStream extends DataStreamLike {
  push(chunk: Buffer | null): boolean;
  _flush(done: (error?: Error | null) => void): void;
  destroy(): void;
}
const DataStream = require("nodemailer/lib/smtp-connection/data-stream.js") as new () => HoldingDataStream;
const originalFlush = DataStream.prototype._flush;
installDotStuffingShim();
installFinalDotWriteShim();

/** What a DataStream emits for `chunks`, chunk by chunk; `original`: with nodemailer's own push and _flush. */
function emitted(chunks: readonly Buffer[], original = false): Promise<{ parts: Buffer[]; inBytes: number; outBytes: number }> {
  const stream = new DataStream();
  if (original) {
    stream.push = Readable.prototype.push;
    stream._flush = originalFlush;
  }
  return dataStreamOutput(stream, chunks);
}

const PIECES = ["\r\n", "\r\n", "\r\n", "text ", "more text", ".", "\r\n.", "\n", "\r", "\n.", "..", "\0"];

describe("the final dot in one write with the message's last chunk", () => {
  it("emits a small message's header block, body and final dot as one chunk less: the last one joined to the dot", async () => {
    const chunks = [Buffer.from("DKIM-Signature: v=1; a=rsa-sha256\r\n"), Buffer.from("Subject: hello\r\n\r\n"), Buffer.from("body line\r\n")];
    const { parts } = await emitted(chunks);
    assert.equal(parts.length, 3, `${parts.length} chunks: ${parts.map((part) => JSON.stringify(part.toString("latin1"))).join(", ")}`);
    assert.equal(parts[2]!.toString("latin1"), "body line\r\n.\r\n");
    // nodemailer's own: every chunk, then the dot alone
    const theirs = await emitted(chunks, true);
    assert.equal(theirs.parts.length, 4);
    assert.equal(theirs.parts[3]!.toString("latin1"), ".\r\n");
  });

  it("joins a message that came in one piece to its dot: one chunk in all", async () => {
    const { parts } = await emitted([Buffer.from("Subject: one piece\r\n\r\nbody\r\n")]);
    assert.deepEqual(
      parts.map((part) => part.toString("latin1")),
      ["Subject: one piece\r\n\r\nbody\r\n.\r\n"],
    );
  });

  it("sends a last chunk larger than JOIN_BYTES on alone, uncopied, then the dot", async () => {
    const big = Buffer.alloc(JOIN_BYTES + 1, "a");
    big.write("\r\n", big.length - 2);
    const { parts } = await emitted([Buffer.from("Subject: big\r\n\r\n"), big]);
    assert.equal(parts.length, 3);
    assert.equal(parts[1], big);
    assert.equal(parts[2]!.toString("latin1"), ".\r\n");
  });

  it("emits exactly nodemailer's bytes and byte counts on 3,000 random inputs in random chunks", async () => {
    const next = seededRandom(20261207);
    let fewer = 0;
    for (let round = 0; round < 3000; round++) {
      const text = randomPieces(next, PIECES, 40);
      const chunks = randomChunks(Buffer.from(text, "latin1"), next, { wholeShare: 0.3, maxSmall: 6 });
      const [mine, theirs] = await Promise.all([emitted(chunks), emitted(chunks, true)]);
      const flat = (result: typeof mine) => ({ out: Buffer.concat(result.parts).toString("latin1"), inBytes: result.inBytes, outBytes: result.outBytes });
      assert.deepEqual(flat(mine), flat(theirs), `round ${round}: ${JSON.stringify(text)} in ${chunks.length} chunks`);
      // every non-empty message loses exactly one write: its dot's
      if (mine.parts.length === theirs.parts.length - 1) fewer++;
    }
    assert.ok(fewer > 2500, `${fewer} of 3000 inputs came out in one chunk fewer`);
  });

  it("drops what it held when the stream is destroyed before its end (the transaction is abandoned)", async () => {
    const stream = new DataStream();
    const parts: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => parts.push(chunk));
    stream.on("error", () => undefined);
    stream.write(Buffer.from("Subject: first\r\n"));
    stream.write(Buffer.from("second\r\n"));
    await new Promise((resolve) => setImmediate(resolve));
    stream.destroy();
    await new Promise((resolve) => stream.on("close", resolve));
    assert.deepEqual(
      parts.map((part) => part.toString("latin1")),
      ["Subject: first\r\n"],
    );
  });
});
