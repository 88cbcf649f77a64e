/**
 * Address parsing and normalisation (DESIGN §3 "Normalisation"): what routing compares, and
 * which recipient spellings are refused as sender-specified routing before any lookup.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  isAddressProblem,
  normalizeDomain,
  parseAddress,
  parseDestinationAddress,
  splitSubaddress,
  type AddressProblem,
  type ParsedAddress,
} from "../../src/routing/email-address.ts";

function parsed(input: string): ParsedAddress {
  const result = parseAddress(input);
  if (isAddressProblem(result)) assert.fail(`expected ${JSON.stringify(input)} to parse, got ${result.problem}: ${result.detail}`);
  return result;
}

function problem(input: string): AddressProblem {
  const result = parseAddress(input);
  if (!isAddressProblem(result)) assert.fail(`expected ${JSON.stringify(input)} to be refused, got ${JSON.stringify(result)}`);
  return result;
}

describe("normalizeDomain", () => {
  it("lower-cases an ASCII domain", () => {
    assert.equal(normalizeDomain("EXAMPLE.Com"), "example.com");
  });

  it("drops a single trailing dot (the same fully-qualified name)", () => {
    assert.equal(normalizeDomain("example.com."), "example.com");
  });

  it("refuses two trailing dots (an empty label)", () => {
    assert.equal(normalizeDomain("example.com.."), null);
  });

  it("refuses empty labels and the empty name", () => {
    assert.equal(normalizeDomain(""), null);
    assert.equal(normalizeDomain("."), null);
    assert.equal(normalizeDomain("example..com"), null);
    assert.equal(normalizeDomain(".example.com"), null);
  });

  it("ignores surrounding whitespace", () => {
    assert.equal(normalizeDomain("  example.com  "), "example.com");
  });

  it("IDNA-encodes a Unicode domain, lower-casing it first", () => {
    assert.equal(normalizeDomain("bücher.de"), "xn--bcher-kva.de");
    assert.equal(normalizeDomain("BÜCHER.DE"), "xn--bcher-kva.de");
  });

  it("keeps an already punycoded domain, lower-cased", () => {
    assert.equal(normalizeDomain("XN--BCHER-KVA.DE"), "xn--bcher-kva.de");
  });

  it("encodes a homograph (Cyrillic а in exаmple.com) to a different name than example.com", () => {
    const homograph = normalizeDomain("ex\u0430mple.com");
    assert.equal(homograph, "xn--exmple-4nf.com");
    assert.notEqual(homograph, "example.com");
  });

  it("applies IDNA mapping: full-width letters and the ideographic full stop are the ASCII name", () => {
    assert.equal(normalizeDomain("ｅｘａｍｐｌｅ.com"), "example.com");
    assert.equal(normalizeDomain("example。com"), "example.com");
  });

  it("refuses labels that start or end with a hyphen, or hold an underscore", () => {
    assert.equal(normalizeDomain("-example.com"), null);
    assert.equal(normalizeDomain("example-.com"), null);
    assert.equal(normalizeDomain("ex_ample.com"), null);
  });

  it("refuses a label longer than 63 octets and a name longer than 253", () => {
    assert.equal(normalizeDomain(`${"a".repeat(63)}.com`), `${"a".repeat(63)}.com`);
    assert.equal(normalizeDomain(`${"a".repeat(64)}.com`), null);
    const long = Array.from({ length: 64 }, () => "abc").join("."); // 255 characters
    assert.equal(normalizeDomain(long), null);
  });

  it("accepts a single-label name such as localhost (zone validation adds the dot rule)", () => {
    assert.equal(normalizeDomain("localhost"), "localhost");
  });

  it("refuses a port, a path, a query, a fragment or a backslash instead of truncating at it", () => {
    // domainToASCII is the WHATWG URL host parser: it would read "example.com/x" as example.com.
    for (const input of ["example.com:25", "example.com/x", "example.com?x", "example.com#x", "ex\\ample.com", "evil.com/example.com"]) {
      assert.equal(normalizeDomain(input), null, input);
    }
  });

  it("refuses percent-escapes instead of decoding them (ex%61mple.com is not example.com)", () => {
    assert.equal(normalizeDomain("ex%61mple.com"), null);
    assert.equal(normalizeDomain("evil.com%2eexample.com"), null);
  });

  it("refuses tabs and newlines inside a name instead of silently removing them", () => {
    assert.equal(normalizeDomain("exam\tple.com"), null);
    assert.equal(normalizeDomain("exam\nple.com"), null);
    assert.equal(normalizeDomain("exam ple.com"), null);
  });

  it("refuses names the URL parser would read as IPv4 (all-numeric top label)", () => {
    // "2130706433" and "0x7f.1" would otherwise come back as "127.0.0.1".
    for (const input of ["2130706433", "0x7f.1", "127.1", "1.2.3.4"]) {
      assert.equal(normalizeDomain(input), null, input);
    }
  });

  it("accepts digits in labels other than the top one", () => {
    assert.equal(normalizeDomain("123.example.com"), "123.example.com");
    assert.equal(normalizeDomain("mx1.example.com"), "mx1.example.com");
  });
});

describe("parseAddress", () => {
  it("parses local@domain into local part, normalised domain and comparison key", () => {
    assert.deepEqual(parsed("Alice@Example.COM"), { local: "Alice", domain: "example.com", key: "alice@example.com" });
  });

  it("keeps the local part's original case while the key is lower-case", () => {
    const address = parsed("J.Doe+News@example.com");
    assert.equal(address.local, "J.Doe+News");
    assert.equal(address.key, "j.doe+news@example.com");
  });

  it("trims surrounding whitespace", () => {
    assert.deepEqual(parsed("  user@example.com \t"), { local: "user", domain: "example.com", key: "user@example.com" });
  });

  it("drops a trailing dot on the domain", () => {
    assert.equal(parsed("user@example.com.").domain, "example.com");
  });

  it("IDNA-encodes a Unicode domain", () => {
    assert.deepEqual(parsed("user@Bücher.de"), { local: "user", domain: "xn--bcher-kva.de", key: "user@xn--bcher-kva.de" });
  });

  it("accepts a UTF-8 local part (SMTPUTF8) and lower-cases it in the key", () => {
    assert.deepEqual(parsed("Ünïcode@example.com"), { local: "Ünïcode", domain: "example.com", key: "ünïcode@example.com" });
  });

  it("removes the quotes of a quoted local part and its backslash escapes", () => {
    assert.equal(parsed('"user"@example.com').local, "user");
    assert.equal(parsed('"a\\"b"@example.com').local, 'a"b');
    assert.equal(parsed('"john smith"@example.com').key, "john smith@example.com");
  });

  it("refuses a quoted local part with a bare quote inside or a dangling backslash", () => {
    assert.deepEqual(problem('"a"b"@example.com'), { problem: "syntax", detail: "malformed local part" });
    assert.deepEqual(problem('"a\\"@example.com'), { problem: "syntax", detail: "malformed local part" });
  });

  it("refuses an empty local part, quoted or not", () => {
    assert.deepEqual(problem('""@example.com'), { problem: "syntax", detail: "malformed local part" });
    assert.deepEqual(problem("@example.com"), { problem: "routing-trick", detail: "source route" });
  });

  it("refuses an address without @, without local part or without domain", () => {
    for (const input of ["user", "user@", "", "   "]) {
      assert.deepEqual(problem(input), { problem: "syntax", detail: "address must be local@domain" }, input);
    }
  });

  it("refuses a local part longer than 64 characters", () => {
    assert.equal(parsed(`${"a".repeat(64)}@example.com`).local.length, 64);
    assert.deepEqual(problem(`${"a".repeat(65)}@example.com`), { problem: "syntax", detail: "local part longer than 64 octets" });
  });

  it("refuses control characters in the local part", () => {
    assert.deepEqual(problem("us\u0000er@example.com"), { problem: "syntax", detail: "control character in local part" });
    assert.deepEqual(problem('"us\ner"@example.com'), { problem: "syntax", detail: "control character in local part" });
  });

  it("refuses an invalid domain as syntax", () => {
    for (const input of ["user@example..com", "user@-example.com", "user@example.com:25", "user@ex%61mple.com", "user@example.com/x"]) {
      assert.deepEqual(problem(input), { problem: "syntax", detail: "invalid domain" }, input);
    }
  });

  describe("sender-specified routing is reported as a routing trick", () => {
    const tricks: [string, string][] = [
      ["user%evil.com@example.com", "sender-specified routing in local part"],
      ["evil.com!user@example.com", "sender-specified routing in local part"],
      ['"user@evil.com"@example.com', "sender-specified routing in local part"],
      ['"user%evil.com"@example.com', "sender-specified routing in local part"],
      ['"evil.com!user"@example.com', "sender-specified routing in local part"],
      ['"user\\@evil.com"@example.com', "sender-specified routing in local part"],
      ["user@example.com@evil.com", "sender-specified routing in local part"],
      ["user@@example.com", "sender-specified routing in local part"],
      ["@relay.example:user@evil.com", "source route"],
      ["@a.example,@b.example:user@evil.com", "source route"],
      ["user@[127.0.0.1]", "address literal"],
      ["user@[IPv6:::1]", "address literal"],
    ];
    for (const [input, detail] of tricks) {
      it(`refuses ${input} as "${detail}"`, () => {
        assert.deepEqual(problem(input), { problem: "routing-trick", detail });
      });
    }
  });

  it("parses user@evil.com. as the foreign domain evil.com (routing refuses it as relay)", () => {
    assert.equal(parsed("user@evil.com.").domain, "evil.com");
  });

  it("parses user@EXAMPLE.COM.evil.com as a sub-domain of evil.com, not as example.com", () => {
    assert.equal(parsed("user@EXAMPLE.COM.evil.com").domain, "example.com.evil.com");
  });
});

describe("isAddressProblem", () => {
  it("tells a problem from a parsed address", () => {
    assert.equal(isAddressProblem(parseAddress("user@example.com")), false);
    assert.equal(isAddressProblem(parseAddress("user%evil.com@example.com")), true);
  });
});

describe("parseDestinationAddress", () => {
  it("normalises the domain to IDNA lower-case and keeps the local part as typed", () => {
    assert.deepEqual(parseDestinationAddress("Bob@BÜCHER.de"), { local: "Bob", domain: "xn--bcher-kva.de", key: "bob@xn--bcher-kva.de" });
  });

  it("trims surrounding whitespace", () => {
    assert.deepEqual(parseDestinationAddress("  a@x.net "), { local: "a", domain: "x.net", key: "a@x.net" });
  });

  it("accepts plus-addressed and dotted local parts", () => {
    assert.equal(parseDestinationAddress("first.last+tag@x.net")?.local, "first.last+tag");
  });

  it("refuses a missing local part or domain", () => {
    assert.equal(parseDestinationAddress("a@"), null);
    assert.equal(parseDestinationAddress("@x.net"), null);
    assert.equal(parseDestinationAddress("x.net"), null);
  });

  it("refuses a local part that is not a dot-atom", () => {
    for (const input of [".a@x.net", "a.@x.net", "a..b@x.net", "a b@x.net", '"a"@x.net', "a(b)@x.net", "a,b@x.net", "a:b@x.net", "a@b@x.net"]) {
      assert.equal(parseDestinationAddress(input), null, input);
    }
  });

  it("refuses a trailing dot on the domain (an operator should write the name plainly)", () => {
    assert.equal(parseDestinationAddress("a@x.net."), null);
  });

  it("refuses address literals and IPv4 names as destinations", () => {
    assert.equal(parseDestinationAddress("a@[1.2.3.4]"), null);
    assert.equal(parseDestinationAddress("a@1.2.3.4"), null);
  });

  it("refuses a local part longer than 64 characters", () => {
    assert.equal(parseDestinationAddress(`${"a".repeat(65)}@x.net`), null);
  });

  it("accepts a domain without a dot (documents current behaviour: a@localhost is allowed)", () => {
    assert.deepEqual(parseDestinationAddress("a@localhost"), { local: "a", domain: "localhost", key: "a@localhost" });
  });

  it("accepts % and ! in an operator-typed destination (they are atext; no routing happens on them here)", () => {
    assert.equal(parseDestinationAddress("a%b@x.net")?.local, "a%b");
    assert.equal(parseDestinationAddress("a!b@x.net")?.local, "a!b");
  });
});

describe("splitSubaddress", () => {
  it("splits user+tag into base and detail", () => {
    assert.deepEqual(splitSubaddress("user+tag"), { base: "user", detail: "tag" });
  });

  it("splits at the first separator when there are several (RFC 5233)", () => {
    assert.deepEqual(splitSubaddress("user+a+b"), { base: "user", detail: "a+b" });
  });

  it("gives an empty detail for user+", () => {
    assert.deepEqual(splitSubaddress("user+"), { base: "user", detail: "" });
  });

  it("does not split +tag: an empty base is not a sub-address", () => {
    assert.deepEqual(splitSubaddress("+tag"), { base: "+tag", detail: null });
  });

  it("has no detail when there is no separator", () => {
    assert.deepEqual(splitSubaddress("user"), { base: "user", detail: null });
  });

  it("honours a custom separator", () => {
    assert.deepEqual(splitSubaddress("user-tag+x", "-"), { base: "user", detail: "tag+x" });
    assert.deepEqual(splitSubaddress("user--tag", "--"), { base: "user", detail: "tag" });
  });
});
