import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineEndingCheck, type BareLineEnding } from "../../src/smtp/line-ending-check.ts";
import { randomChunks, randomPieces, seededRandom } from "../support/seeded-random.ts";

/** The scan as it was before the regular expression (two indexOf passes per chunk): the reference. */
function referenceVerdict(chunks: readonly Buffer[]): BareLineEnding | null {
  let previous = -1;
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    if (previous === 0x0d && chunk[0] !== 0x0a) return "CR";
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) {
      if ((at === 0 ? previous : chunk[at - 1]) !== 0x0d) return "LF";
    }
    for (let at = chunk.indexOf(0x0d); at !== -1 && at < chunk.length - 1; at = chunk.indexOf(0x0d, at + 1)) {
      if (chunk[at + 1] !== 0x0a) return "CR";
    }
    previous = chunk[chunk.length - 1]!;
  }
  return previous === 0x0d ? "CR" : null;
}

function verdict(...chunks: string[]): string | null {
  const check = new LineEndingCheck();
  for (const chunk of chunks) check.scan(Buffer.from(chunk, "latin1"));
  return check.finish();
}

describe("LineEndingCheck", () => {
  it("passes content whose lines all end in CRLF, however it is split", () => {
    assert.equal(verdict("Subject: a\r\n\r\nbody\r\n"), null);
    assert.equal(verdict("Subject: a\r", "\n\r", "\nbody\r\n"), null);
    assert.equal(verdict(""), null);
  });

  it("finds the smuggling sequences and any other bare CR or LF", () => {
    assert.equal(verdict("a\r\nb\n.\nc\r\n"), "LF");
    assert.equal(verdict("a\r\nb\r.\rc\r\n"), "CR");
    assert.equal(verdict("a\r\n.\rc\r\n"), "CR");
    assert.equal(verdict("a\n.\r\nc\r\n"), "LF");
    assert.equal(verdict("\nstarts with LF\r\n"), "LF");
  });

  it("finds a bare CR or LF across a chunk boundary, and a CR at the very end", () => {
    assert.equal(verdict("line\r", "next\r\n"), "CR");
    assert.equal(verdict("line", "\nnext\r\n"), "LF");
    assert.equal(verdict("line\r\n", "tail\r"), "CR");
  });

  it("gives the verdict the two-pass scan gave, on 4,000 random inputs in random chunks", () => {
    const next = seededRandom(20261208);
    const pieces = ["\r\n", "\r\n", "\r\n", "a", "bc", ".", "\r", "\n", "\r\n.\r\n", "\n.\n", "\r.\r"];
    const seen = new Set<string | null>();
    for (let round = 0; round < 4000; round++) {
      const input = Buffer.from(randomPieces(next, pieces, 40), "latin1");
      const chunks = randomChunks(input, next, { wholeShare: 0.2, maxSmall: 12 });
      const check = new LineEndingCheck();
      for (const chunk of chunks) check.scan(chunk);
      const expected = referenceVerdict(chunks);
      assert.equal(check.finish(), expected, `round ${round}: ${JSON.stringify(input.toString("latin1"))} in ${chunks.length} chunks`);
      seen.add(expected);
    }
    // the corpus reaches every verdict
    assert.deepEqual([...seen].sort(), ["CR", "LF", null].sort());
  });

  it("scans a chunk longer than a network read in slices, with a CRLF across a slice boundary and a bare LF far in", () => {
    const slice = 64 * 1024;
    // "\r" last in the first slice, "\n" first in the second: a CRLF, not a bare CR
    const straddling = Buffer.alloc(3 * slice, "a");
    for (let at = 100; at < straddling.length - 2; at += 100) straddling.write("\r\n", at, "latin1");
    straddling.write("\r\n", slice - 1, "latin1");
    straddling.write("\r\n", straddling.length - 2, "latin1");
    assert.equal(verdict(straddling.toString("latin1")), null);
    const bare = Buffer.from(straddling);
    bare[2 * slice + 50] = 0x0a;
    assert.equal(verdict(bare.toString("latin1")), "LF");
  });
});
