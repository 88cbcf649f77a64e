/**
 * nodemailer's dot-stuffing stream with a fast path for chunks it would not change
 * (src/delivery/dot-stuffing-shim.ts) emits exactly what nodemailer's own does: random input full
 * of dots, CRs and LFs, cut into random chunks, goes through a DataStream with nodemailer's
 * _transform and one with ours; the bytes out and the byte counters must be identical.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { installDotStuffingShim, type DataStreamInternals } from "../../src/delivery/dot-stuffing-shim.ts";
import { dataStreamOutput } from "../support/data-stream-output.ts";
import { randomChunks, randomPieces, seededRandom } from "../support/seeded-random.ts";

const require = createRequire(import.meta.url);
type DataStreamClass = new () => DataStreamInternals & NodeJS.ReadWriteStream;
const DataStream = require("nodemailer/lib/smtp-connection/data-stream.js") as DataStreamClass;
const originalTransform = DataStream.prototype._transform;
installDotStuffingShim();

async function stuff(chunks: readonly Buffer[], transform: "original" | "shim"): Promise<{ out: string; inBytes: number; outBytes: number }> {
  const stream = new DataStream();
  if (transform === "original") stream._transform = originalTransform;
  const { parts, inBytes, outBytes } = await dataStreamOutput(stream, chunks);
  return { out: Buffer.concat(parts).toString("latin1"), inBytes, outBytes };
}


const PIECES = ["\r\n", "\r\n", "\r\n", "text ", "more text", ".", "\r\n.", "\n", "\r", "\n.", "..", "\0"];

describe("dot-stuffing with a fast path", () => {
  it("is the fast path that runs: a plain CRLF chunk comes out as the very same Buffer", async () => {
    const stream = new DataStream();
    const chunk = Buffer.from("Subject: x\r\n\r\nline\r\n");
    const out: Buffer[] = [];
    stream.on("data", (part: Buffer) => out.push(part));
    stream.write(chunk);
    stream.end();
    await new Promise((resolve) => stream.on("end", resolve));
    assert.equal(out[0], chunk);
  });

  it("emits exactly what nodemailer's own stream emits, on 4,000 random inputs in random chunks", async () => {
    const next = seededRandom(2026);
    let changed = 0;
    for (let round = 0; round < 4000; round++) {
      const text = randomPieces(next, PIECES, 40);
      const input = Buffer.from(text, "latin1");
      const chunks = randomChunks(input, next, { wholeShare: 0.3, maxSmall: 6 });
      const [mine, theirs] = await Promise.all([stuff(chunks, "shim"), stuff(chunks, "original")]);
      assert.deepEqual(mine, theirs, `round ${round}: ${JSON.stringify(text)} in ${chunks.length} chunks`);
      if (theirs.out !== `${text}\r\n.\r\n` && theirs.out !== `${text}.\r\n`) changed++;
    }
    // the corpus has inputs nodemailer changes (stuffed dots, bare LFs) and inputs it passes on
    assert.ok(changed > 500 && changed < 3900, `${changed} of 4000 inputs were changed`);
  });

  it("emits the same for chunks longer than the text scan takes (a spool's 1 MiB reads), with and without a change in them", async () => {
    const next = seededRandom(20261209);
    const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let changed = 0;
    for (let round = 0; round < 40; round++) {
      // about 200 KiB of CRLF lines; most rounds hide one dot-starting line or bare LF somewhere
      const text = line.repeat(2700).split("");
      if (round % 4 !== 0) text.splice(Math.floor(next() * text.length), 0, ["\n", "\r\n.", "\n."][round % 3]!);
      const input = Buffer.from(text.join(""), "latin1");
      const cut = 1 + Math.floor(next() * (input.length - 1));
      const chunks = [input.subarray(0, cut), input.subarray(cut)];
      const [mine, theirs] = await Promise.all([stuff(chunks, "shim"), stuff(chunks, "original")]);
      assert.deepEqual(mine, theirs, `round ${round}`);
      if (theirs.outBytes !== input.length + 3) changed++;
    }
    assert.ok(changed >= 20 && changed <= 30, `${changed} of 40 inputs were changed`);
  });
});
