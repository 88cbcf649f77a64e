/**
 * mailauth's message parser with native line-end searches (src/inbound/mailauth-scan-shim.ts)
 * does exactly what mailauth's own does: random input full of CRs and LFs (empty lines in every
 * form, bare LFs, a first line that is empty), cut into random chunks, goes through a parser
 * with mailauth's own methods and one with ours; every call they make (header chunks handed
 * over, body chunks) and the fields they leave behind must be identical. Also: a real DKIM
 * verification through mailauth still passes with the shim installed.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { dkimSign, dkimVerify } from "mailauth";
import { installMailauthScanShim, ORIGINAL_METHODS, type ParserInternals } from "../../src/inbound/mailauth-scan-shim.ts";
import { randomChunks, randomPieces, seededRandom } from "../support/seeded-random.ts";

installMailauthScanShim();
const { MessageParser } = createRequire(import.meta.url)("mailauth/lib/dkim/message-parser.js") as { MessageParser: new () => ParserInternals & { write(chunk: Buffer, callback: (error?: Error | null) => void): void; end(callback: () => void): void } };
const original = (MessageParser.prototype as ParserInternals)[ORIGINAL_METHODS]!;

interface Trace {
  calls: string[];
  state: string;
  stateBytes: number[];
  headerBytes: number;
  lastByte: number | undefined;
}

/** Through the parser's write() (line ends normalised first), or straight into processChunk (bare LFs reach it). */
async function trace(chunks: readonly Buffer[], methods: "original" | "shim", path: "write" | "direct" = "write"): Promise<Trace> {
  const calls: string[] = [];
  const parser = new MessageParser();
  if (methods === "original") {
    parser.processChunk = original.processChunk;
    parser.ensureLinebreaks = original.ensureLinebreaks;
  }
  const emit = parser.emitHeaders.bind(parser);
  parser.emitHeaders = async (chunk?: Buffer) => {
    calls.push(`headers:${JSON.stringify(chunk?.toString("latin1") ?? null)}|${JSON.stringify(Buffer.concat(parser.headerChunks).toString("latin1"))}`);
    await emit(chunk);
  };
  parser.nextChunk = async (chunk: Buffer) => {
    calls.push(`body:${JSON.stringify(chunk.toString("latin1"))}`);
  };
  for (const chunk of chunks) {
    if (path === "direct") await parser.processChunk(chunk);
    else await new Promise<void>((resolve, reject) => parser.write(chunk, (error) => (error ? reject(error) : resolve())));
  }
  return { calls, state: parser.state, stateBytes: parser.stateBytes, headerBytes: parser.headerBytes, lastByte: parser.lastByte };
}


const PIECES = ["\r", "\n", "\r\n", "\r\n", "a", "Subject: x", ": ", "\r\n\r\n", "\n\n", "\n\r\n", "\t", "body"];

describe("mailauth's parser with native line-end searches", () => {
  it("does what mailauth's own parser does, on 4,000 random inputs in random chunks", async () => {
    const next = seededRandom(611);
    let withBody = 0;
    for (let round = 0; round < 4000; round++) {
      const text = randomPieces(next, PIECES, 40);
      const input = Buffer.from(text, "latin1");
      const chunks = randomChunks(input, next, { wholeShare: 0.3, maxSmall: 5 });
      for (const path of ["write", "direct"] as const) {
        const [mine, theirs] = await Promise.all([trace(chunks, "shim", path), trace(chunks, "original", path)]);
        assert.deepEqual(mine, theirs, `round ${round} (${path}): ${JSON.stringify(text)} in ${chunks.length} chunks`);
      }
      const theirs = await trace(chunks, "original");
      if (theirs.calls.some((call) => call.startsWith("body:"))) withBody++;
    }
    // the corpus reaches the body often, and often never ends its header section
    assert.ok(withBody > 500 && withBody < 3900, `${withBody} of 4000 inputs reached a body`);
  });

  it("still lets mailauth verify a DKIM signature (header section and body through the shimmed parser)", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const message = Buffer.from("From: a@sign.test\r\nTo: b@dest.test\r\nSubject: shim\r\n\r\nline one\r\n.dot line\nbare LF line\r\n\r\n");
    // signatureData: mailauth's real option shape (its d.ts still describes an older one)
    const options = { signatureData: [{ signingDomain: "sign.test", selector: "s1", privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString() }] };
    const signed = await dkimSign(message, options as unknown as Parameters<typeof dkimSign>[1]);
    assert.match(signed.signatures, /^DKIM-Signature: /);
    const record = `v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`;
    const result = await dkimVerify(Buffer.concat([Buffer.from(signed.signatures), message]), {
      resolver: (async (name: string) => {
        if (name === "s1._domainkey.sign.test") return [[record]];
        throw Object.assign(new Error(`no ${name}`), { code: "ENOTFOUND" });
      }) as never,
    });
    assert.deepEqual(result.results.map((row) => row.status.result), ["pass"]);
  });
});
