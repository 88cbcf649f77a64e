/**
 * toALabel against the function mailauth writes d= and s= with (tools.js toALabel, on
 * punycode.js): the same A-labels for names in many scripts, in upper case, not in NFC, with
 * IDNA full stops, and for ASCII names left alone.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { toALabel } from "../../src/delivery/a-label.ts";

const mailauth = createRequire(import.meta.url)("mailauth/lib/tools") as { toALabel: (domain: string) => string };

describe("toALabel", () => {
  it("writes the A-labels mailauth writes", () => {
    const names = [
      "example.com", "Example.COM", "bücher.example", "BÜCHER.example", "münchen-ü.de", "xn--bcher-kva.example",
      "例え.テスト", "例え\u3002テスト", "пример.испытание", "مثال.إختبار", "ελληνικά.gr", "ñandú.es", "straße.de",
      "e\u0301cole.fr", "école.fr", "😀.example", "a😀b.example", "ab--c.ü.example", "-leading-ü.example", "", "ü", "a@ü.example@x", "a@ü@b.example", "\ud800.example",
    ];
    for (const name of names) assert.equal(toALabel(name), mailauth.toALabel(name), JSON.stringify(name));
  });

  it("agrees on random labels from mixed scripts", () => {
    const alphabet = ["a", "Z", "0", "-", "ü", "ß", "É", "я", "中", "文", "\u3002", "😀", "\u0301", "ﬁ", "İ"];
    let seed = 11;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let round = 0; round < 2000; round++) {
      const length = 1 + Math.floor(next() * 20);
      const name = Array.from({ length }, () => (next() < 0.1 ? "." : alphabet[Math.floor(next() * alphabet.length)]!)).join("");
      assert.equal(toALabel(name), mailauth.toALabel(name), JSON.stringify(name));
    }
  });
});
