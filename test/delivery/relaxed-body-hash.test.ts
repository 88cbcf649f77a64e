/**
 * Our relaxed body hash (relaxed-body-hash.ts) against mailauth's own canonicalizer, the one it
 * replaces on the signing path: random bodies built from the characters canonicalization is
 * about, fed whole and split at random places, must hash the same.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { RelaxedBodyHash } from "../../src/delivery/relaxed-body-hash.ts";

const { dkimBody } = createRequire(import.meta.url)("mailauth/lib/dkim/body") as {
  dkimBody: (canonicalization: string, algorithm: string, maxBodyLength: number | false) => { update(chunk: Buffer): void; digest(encoding: string): string };
};

function mailauthHash(body: Buffer, cuts: readonly number[]): string {
  const hasher = dkimBody("relaxed", "sha256", false);
  for (const part of split(body, cuts)) hasher.update(part);
  return hasher.digest("base64");
}

function ourHash(body: Buffer, cuts: readonly number[]): string {
  const hasher = new RelaxedBodyHash();
  for (const part of split(body, cuts)) hasher.update(part);
  return hasher.digest("base64");
}

function split(body: Buffer, cuts: readonly number[]): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    parts.push(body.subarray(at, cut));
    at = cut;
  }
  return parts;
}

/** A small deterministic generator, so a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

const PIECES = ["a", "b", "Z", "=", " ", "  ", "\t", " \t ", "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", " \r\n", "\r\n\r\n", "é"];

describe("relaxed body hash", () => {
  it("equals mailauth's for named edge cases", () => {
    const cases = ["", "\r\n", "\r\n\r\n\r\n", "a", "a\r\n", "a\r\n\r\n", "a \t b  \r\n", " \r\n", "a\n\nb\n", "a\r", "a\r\nb", "a  ", "\t\tx\t\r\n \r\n", "line\r\n \t \r\n\r\n"];
    for (const text of cases) {
      const body = Buffer.from(text, "latin1");
      assert.equal(ourHash(body, []), mailauthHash(body, []), JSON.stringify(text));
    }
  });

  it("equals mailauth's on 3,000 random bodies split at random places", () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const next = random(seed);
      const length = Math.floor(next() * 60);
      const body = Buffer.from(Array.from({ length }, () => PIECES[Math.floor(next() * PIECES.length)]).join(""), "latin1");
      const cuts = Array.from({ length: Math.floor(next() * 5) }, () => Math.floor(next() * (body.length + 1))).sort((x, y) => x - y);
      assert.equal(ourHash(body, cuts), mailauthHash(body, cuts), `seed ${seed}: ${JSON.stringify(body.toString("latin1"))} cut at ${cuts}`);
    }
  });

  it("equals mailauth's on a large canonical body fed in 64 KiB chunks", () => {
    const line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    const body = Buffer.from(line.repeat(40_000) + "\r\n\r\n");
    const cuts = Array.from({ length: Math.floor(body.length / 65_536) }, (_, i) => (i + 1) * 65_536);
    assert.equal(ourHash(body, cuts), mailauthHash(body, cuts));
  });
});
