/**
 * The joi stand-in (src/inbound/joi-stand-in.ts) against joi 18 itself, as mailauth resolves it:
 * the two schemas mailauth builds answer the same for generated and edge-case input (same verdict,
 * message, error type and value), and every other use reaches the real joi. This process does not
 * load mailauth-stand-ins.ts, so `require("joi")` here is the real one.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { joiStandIn, type DomainCheck, type JoiLikeSchema, type RealJoi } from "../../src/inbound/joi-stand-in.ts";
import { randomPieces, seededRandom } from "../support/seeded-random.ts";

const require = createRequire(import.meta.url);
const joiPath = createRequire(require.resolve("mailauth")).resolve("joi");
const Joi = require(joiPath) as RealJoi;
const isDomainValid = (createRequire(joiPath)("@hapi/address") as { isDomainValid: DomainCheck }).isDomainValid;

let realLoads = 0;
const standIn = joiStandIn(
  () => {
    realLoads++;
    return Joi;
  },
  () => isDomainValid,
) as { string(): Record<string, (options?: unknown) => JoiLikeSchema> } & Record<string, unknown>;

function strings(seed: number, count: number, alphabet: string, maxLength: number): string[] {
  const next = seededRandom(seed);
  return Array.from({ length: count }, () => randomPieces(next, [...alphabet], maxLength + 1));
}

function domains(seed: number, count: number): string[] {
  const next = seededRandom(seed);
  const label = () => strings(Math.floor(next() * 1e9), 1, "ab9Z-_xn", Math.floor(next() * 7))[0]!;
  return Array.from({ length: count }, () => {
    const parts = Array.from({ length: 1 + Math.floor(next() * 4) }, label);
    return parts.join(".") + (next() < 0.15 ? "." : "");
  });
}

const NON_STRINGS: unknown[] = [undefined, null, 0, 42, true, {}, [], Buffer.from("QUJD")];

function sameAnswer(schema: JoiLikeSchema, reference: JoiLikeSchema, value: unknown): void {
  const ours = schema.validate(value);
  const theirs = reference.validate(value) as { value: unknown; error?: { message: string; name: string; details: { type: string }[] } };
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  assert.equal(Boolean(ours.error), Boolean(theirs.error), `verdict for ${shown}`);
  assert.deepEqual(ours.value, theirs.value, `value for ${shown}`);
  if (theirs.error !== undefined) {
    assert.equal(ours.error!.message, theirs.error.message, `message for ${shown}`);
    assert.equal(ours.error!.name, theirs.error.name);
    assert.equal(ours.error!.details[0]!.type, theirs.error.details[0]!.type, `error type for ${shown}`);
    assert.ok(ours.error instanceof Error);
  }
}

/** Every input answered alike, and enough of them valid and invalid for that to mean something. */
function sameAnswers(schema: JoiLikeSchema, reference: JoiLikeSchema, inputs: readonly unknown[]): void {
  let passed = 0;
  for (const value of inputs) {
    sameAnswer(schema, reference, value);
    if (schema.validate(value).error === undefined) passed++;
  }
  assert.ok(passed > 100 && passed < inputs.length - 100, `the input mixes valid and invalid values (${passed} of ${inputs.length} valid)`);
}

describe("joi stand-in", () => {
  it("answers base64({ paddingRequired: false }) as joi does", () => {
    const ours = standIn.string().base64!({ paddingRequired: false });
    const theirs = (Joi.string() as Record<string, (options: unknown) => JoiLikeSchema>).base64!({ paddingRequired: false });
    const edge = ["", "A", "AB", "ABC", "ABCD", "AB==", "ABC=", "ABCD=", "A===", "AB=", "A=BC", "ABCDAB", "ABCDAB==", "ABCDABC", "ABCDABC=", "AB==AB", "ab+/", "ab-_", " ABCD", "ABCD\n", "QUJD\r\nREVG", "é", "AAAA".repeat(90)];
    // a real DKIM p= value (RSA-2048), with and without its padding
    const key = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu5FvO3mJSWg8TqJeKu1oXRCt8K1q2bi+5fAE9iZJ4J4CqQzT3vHhUA1JXrFQ5kYk0G7Ll9JV8kn2eR5ZcA1xW0QIDAQAB";
    sameAnswers(ours, theirs, [...edge, key, key.slice(0, -2), `${key}=`, ...strings(1, 3000, "AZaz09+/=-_ .", 10), ...NON_STRINGS]);
  });

  it("answers domain({ allowUnicode: false, tlds: false }) as joi does", () => {
    const ours = standIn.string().domain!({ allowUnicode: false, tlds: false });
    const theirs = (Joi.string() as Record<string, (options: unknown) => JoiLikeSchema>).domain!({ allowUnicode: false, tlds: false });
    const long = (length: number) => `${"a".repeat(63)}.`.repeat(8).slice(0, length - 4) + ".com";
    const edge = ["", "a", "a.b", "a.b.", ".a.b", "a..b", "-a.b", "a-.b", "a.b-", "xn--bcher-kva.example", "a.123", "1.2.3.4", "localhost", "under_score.example", "_dmarc.example.com", `${"a".repeat(63)}.com`, `${"a".repeat(64)}.com`, long(253), long(255), long(256), "é.com", "exämple.com", "*.example.com", "a b.com", "example.com\n", "EXAMPLE.COM", "example.c", "example.co1", "ex--ample.com"];
    sameAnswers(ours, theirs, [...edge, ...domains(2, 4000), ...NON_STRINGS]);
  });

  it("makes those two schemas without loading joi, and hands every other use to the real joi", () => {
    const before = realLoads;
    standIn.string().base64!({ paddingRequired: false }).validate("QUJD");
    standIn.string().domain!({ allowUnicode: false, tlds: false }).validate("example.com");
    assert.equal(realLoads, before, "joi was loaded for the two schemas");
    // another rule, other options, another type, another export: joi's own answers
    const min = (standIn.string() as unknown as { min(limit: number): JoiLikeSchema }).min(3).validate("ab");
    assert.equal(min.error?.message, '"value" length must be at least 3 characters long');
    const padded = standIn.string().base64!({ paddingRequired: true }).validate("QUI");
    assert.equal(padded.error?.message, '"value" must be a valid base64 string');
    const withTlds = standIn.string().domain!({ tlds: { allow: ["com"] } }).validate("example.org");
    assert.equal(withTlds.error?.message, '"value" must contain a valid domain name');
    assert.equal(standIn.number, Joi.number);
    assert.ok(realLoads > before);
  });
});
