/**
 * The DATA parser with a native search for line-initial dots (src/smtp/data-scan-shim.ts) does
 * exactly what smtp-server's own does: random input full of dots, CRs and LFs (terminators,
 * escape dots, bare line endings, dots at the start, pipelined commands after the end), cut into
 * random chunks, goes through smtp-server's SMTPStream once with its own method and once with
 * ours; the content, the byte count and the commands parsed after the end must be identical.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SMTPStream } from "../../src/smtp/smtp-server-package.ts";
import { installDataScanShim, ORIGINAL_FEED, type StreamInternals } from "../../src/smtp/data-scan-shim.ts";
import { randomChunks, randomPieces, seededRandom } from "../support/seeded-random.ts";

installDataScanShim();
const proto = SMTPStream.prototype as unknown as StreamInternals;

interface Parsed {
  content: string;
  dataBytes: number;
  ended: boolean;
  commands: string[];
}

async function parse(chunks: readonly Buffer[], feed: "original" | "shim"): Promise<Parsed> {
  const stream = new SMTPStream() as unknown as StreamInternals & SMTPStream & { dataBytes: number; oncommand: (command: Buffer, callback?: () => void) => void };
  if (feed === "original") stream._feedDataStream = proto[ORIGINAL_FEED]!;
  const commands: string[] = [];
  stream.oncommand = (command, callback) => {
    commands.push(command.toString("latin1"));
    callback?.();
  };
  const data = stream.startDataMode(0);
  const parts: Buffer[] = [];
  data.on("data", (chunk: Buffer) => parts.push(chunk));
  const ended = new Promise<void>((resolve) => data.on("end", resolve));
  data.on("end", () => stream.continue());
  for (const chunk of chunks) await new Promise<void>((resolve, reject) => stream.write(chunk, (error) => (error ? reject(error) : resolve())));
  await new Promise<void>((resolve) => stream.end(resolve));
  const finished = await Promise.race([ended.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20))]);
  return { content: Buffer.concat(parts).toString("latin1"), dataBytes: stream.dataBytes, ended: finished, commands };
}


const PIECES = [".", ".", "\r", "\n", "\r\n", "a", "bc", "\r\n.", "\r\n..", "\n.", "\r\n.\r\n", ".\r\n", "..\r\n", "\n.\r\n", "QUIT\r\n", "\r\n.\r\nRSET\r\n"];

describe("DATA parser with a native dot search", () => {
  it("emits exactly what smtp-server's own parser emits, on 4,000 random inputs in random chunks", async () => {
    const next = seededRandom(20261206);
    let terminated = 0;
    for (let round = 0; round < 4000; round++) {
      const input = Buffer.from(randomPieces(next, PIECES, 60), "latin1");
      const chunks = randomChunks(input, next, { wholeShare: 0.2, maxSmall: 8 });
      const [original, shim] = await Promise.all([parse(chunks, "original"), parse(chunks, "shim")]);
      assert.deepEqual(shim, original, `round ${round}: ${JSON.stringify(input.toString("latin1"))} in ${chunks.length} chunks`);
      if (original.ended) terminated++;
    }
    // the corpus exercises both outcomes: messages that end, and input that never terminates
    assert.ok(terminated > 1000 && terminated < 3900, `${terminated} of 4000 inputs terminated`);
  });

  it("emits the same in chunks long enough that the held-back bytes go on alone (no copy onto the next chunk)", async () => {
    const next = seededRandom(20261207);
    for (let round = 0; round < 4000; round++) {
      const input = Buffer.from(randomPieces(next, PIECES, 80), "latin1");
      const chunks = randomChunks(input, next, { wholeShare: 0.05, maxSmall: 40 });
      const [original, shim] = await Promise.all([parse(chunks, "original"), parse(chunks, "shim")]);
      assert.deepEqual(shim, original, `round ${round}: ${JSON.stringify(input.toString("latin1"))} in ${chunks.length} chunks`);
    }
  });

  it("handles a large message with escape dots across many chunks the same way", async () => {
    const line = (index: number) => (index % 7 === 0 ? ".." : "") + `line ${index} `.repeat(5) + "\r\n";
    const body = Buffer.from(Array.from({ length: 20_000 }, (_, index) => line(index)).join("") + ".\r\nQUIT\r\n", "latin1");
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; at += 65_537) chunks.push(body.subarray(at, at + 65_537));
    const [original, shim] = await Promise.all([parse(chunks, "original"), parse(chunks, "shim")]);
    assert.deepEqual(shim, original);
    assert.ok(shim.ended);
    assert.deepEqual(shim.commands, ["QUIT"]);
  });
});
