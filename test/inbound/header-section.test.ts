import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { readHeaderSection } from "../../src/inbound/header-section.ts";

describe("reading the header section of a message", () => {
  it("keeps every field in order, names lower-cased, folded values unfolded (RFC 5322 §2.2.3)", () => {
    const section = readHeaderSection(Buffer.from("From: a@x.example\r\nSubject: one\r\n\ttwo  three\r\nFROM: b@y.example\r\n\r\nbody"));

    assert.deepEqual(section.fields, [
      { name: "from", value: "a@x.example" },
      { name: "subject", value: "one two three" },
      { name: "from", value: "b@y.example" },
    ]);
    assert.equal(section.malformedLines, 0);
    assert.equal(section.complete, true);
  });

  it("stops at the first empty line: header-like body text is body", () => {
    const section = readHeaderSection(Buffer.from("Subject: s\n\nFrom: not@a.header\nDate: nor this\n"));

    assert.deepEqual(section.fields.map((field) => field.name), ["subject"]);
  });

  it("counts lines that are not fields: an mbox separator, a line without a colon, a leading continuation", () => {
    const section = readHeaderSection(Buffer.from(" leading continuation\r\nFrom alice Mon Mar  2 09:58:00 2026\r\nSubject: ok\r\nno colon here\r\n\r\n"));

    assert.equal(section.malformedLines, 3);
    assert.deepEqual(section.fields.map((field) => field.name), ["subject"]);
  });

  it("reads a message that starts with an empty line as having no header fields", () => {
    const section = readHeaderSection(Buffer.from("\r\nFrom: body@x.example\r\n"));

    assert.deepEqual(section, { fields: [], malformedLines: 0, complete: true });
  });

  it("says when no empty line ended the section within the bytes it was given", () => {
    assert.equal(readHeaderSection(Buffer.from("From: a@x.example\r\nSubject: cut off mid-hea")).complete, false);
  });

  it("never throws on bytes that are not a message", () => {
    for (let i = 0; i < 50; i++) readHeaderSection(randomBytes(2_048));
    readHeaderSection(Buffer.alloc(0));
  });
});
