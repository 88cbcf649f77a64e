import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineEndingCheck } from "../../src/smtp/line-ending-check.ts";

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
});
