/**
 * Destination expressions (DESIGN §3, compatible with reference/multi-destination-failover-worker):
 * `,` separates primaries that all receive the message; `:` lists backups tried in order;
 * whitespace is ignored.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allDestinations,
  DestinationExpressionError,
  formatDestinationChains,
  parseDestinationExpression,
} from "../../src/routing/destination-expression.ts";

/** Asserts that parsing throws a DestinationExpressionError naming `destination`. */
function assertRefused(input: string | readonly string[], destination: string, reason: RegExp): void {
  assert.throws(
    () => parseDestinationExpression(input),
    (error: unknown) => {
      assert.ok(error instanceof DestinationExpressionError, `expected DestinationExpressionError, got ${String(error)}`);
      assert.equal(error.name, "DestinationExpressionError");
      assert.equal(error.destination, destination);
      assert.ok(error.message.startsWith(`destination "${destination}" `), error.message);
      assert.match(error.message, reason);
      return true;
    },
  );
}

describe("parseDestinationExpression", () => {
  describe("shapes", () => {
    it("parses a single destination as one primary without backups", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net"), [["a@x.net"]]);
    });

    it("parses comma-separated destinations as primaries that all receive the message", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net,b@y.net,c@z.net"), [["a@x.net"], ["b@y.net"], ["c@z.net"]]);
    });

    it("parses colon-separated destinations as one primary with backups in order", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net:b@y.net:c@z.net"), [["a@x.net", "b@y.net", "c@z.net"]]);
    });

    it('parses the DESIGN §3 example "a@x.net:a@y.net, b@z.net" as [[a@x.net, a@y.net], [b@z.net]]', () => {
      assert.deepEqual(parseDestinationExpression("a@x.net:a@y.net, b@z.net"), [["a@x.net", "a@y.net"], ["b@z.net"]]);
    });

    it("keeps primaries in the order written", () => {
      assert.deepEqual(parseDestinationExpression("c@z.net, a@x.net, b@y.net"), [["c@z.net"], ["a@x.net"], ["b@y.net"]]);
    });

    it("parses several primaries each with their own backups", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net:a2@x.net, b@y.net:b2@y.net:b3@y.net, c@z.net"), [
        ["a@x.net", "a2@x.net"],
        ["b@y.net", "b2@y.net", "b3@y.net"],
        ["c@z.net"],
      ]);
    });
  });

  describe("examples from the failover worker's README", () => {
    it('routes "any@email1.com, any@email2.com" to two primaries simultaneously', () => {
      assert.deepEqual(parseDestinationExpression("any@email1.com, any@email2.com"), [["any@email1.com"], ["any@email2.com"]]);
    });

    it('routes "primary.or.backup0@email.com:backup1@email.com:backup2@email.com" to one primary tried in that order', () => {
      assert.deepEqual(parseDestinationExpression("primary.or.backup0@email.com:backup1@email.com:backup2@email.com"), [
        ["primary.or.backup0@email.com", "backup1@email.com", "backup2@email.com"],
      ]);
    });

    it('ignores whitespace in destination configuration ("Whitespace is ignored in ... destination address configuration")', () => {
      const expected = [["primary.or.backup0@email.com", "backup1@email.com"], ["any@email2.com"]];
      assert.deepEqual(parseDestinationExpression(" primary.or.backup0@email.com : backup1@email.com ,  any@email2.com "), expected);
      assert.deepEqual(parseDestinationExpression("primary.or.backup0@email.com:backup1@email.com,any@email2.com"), expected);
    });
  });

  describe("whitespace", () => {
    it("ignores spaces, tabs and newlines around every separator and address", () => {
      const expected = [["a@x.net", "a@y.net"], ["b@z.net"]];
      assert.deepEqual(parseDestinationExpression("  a@x.net\t:\n a@y.net ,\r\n\tb@z.net  \n"), expected);
      assert.deepEqual(parseDestinationExpression("a@x.net\n:\na@y.net\n,\nb@z.net"), expected);
    });

    it("ignores Unicode spaces such as a no-break space", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net,\u00a0b@y.net\u2003"), [["a@x.net"], ["b@y.net"]]);
    });

    it("removes whitespace inside an address too, so \"a b@x.net\" becomes ab@x.net (whitespace is ignored, not a separator)", () => {
      assert.deepEqual(parseDestinationExpression("a b@x.net"), [["ab@x.net"]]);
    });
  });

  describe("normalisation", () => {
    it("lower-cases the domain and keeps the local part as typed", () => {
      assert.deepEqual(parseDestinationExpression("Bob.Smith@EXAMPLE.Net"), [["Bob.Smith@example.net"]]);
    });

    it("punycodes an IDN destination domain", () => {
      assert.deepEqual(parseDestinationExpression("kontakt@Bücher.de : jörg@münchen.example"), [
        ["kontakt@xn--bcher-kva.de", "jörg@xn--mnchen-3ya.example"],
      ]);
    });

    it("accepts a destination whose domain has no dot (documents current behaviour: a@localhost)", () => {
      assert.deepEqual(parseDestinationExpression("a@localhost"), [["a@localhost"]]);
    });
  });

  describe("duplicates", () => {
    it("keeps a primary written twice once", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net, b@y.net, a@x.net"), [["a@x.net"], ["b@y.net"]]);
    });

    it("treats addresses that differ only in case as the same destination", () => {
      assert.deepEqual(parseDestinationExpression("Bob@x.net, bob@X.NET, BOB@x.net"), [["Bob@x.net"]]);
    });

    it("treats a Unicode domain and its punycode form as the same destination", () => {
      assert.deepEqual(parseDestinationExpression("a@bücher.de, a@xn--bcher-kva.de"), [["a@xn--bcher-kva.de"]]);
    });

    it("drops a backup repeated within its own chain", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net:b@y.net:b@y.net:a@x.net"), [["a@x.net", "b@y.net"]]);
    });

    it("keeps a backup named by two chains only in the first, so a double failure cannot deliver it twice", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net:spare@z.net, b@y.net:spare@z.net"), [["a@x.net", "spare@z.net"], ["b@y.net"]]);
    });

    it("keeps an address that is a primary anywhere as a primary, dropping it where it was written as a backup", () => {
      // b@y.net always receives the message; as a@x.net's backup it would only receive it when a@x.net failed.
      assert.deepEqual(parseDestinationExpression("a@x.net:b@y.net, b@y.net"), [["a@x.net"], ["b@y.net"]]);
      assert.deepEqual(parseDestinationExpression("b@y.net, a@x.net:b@y.net"), [["b@y.net"], ["a@x.net"]]);
    });

    it("never promotes a backup to a primary when an earlier chain names its primary as a backup", () => {
      // c@z.net is only b@y.net's backup: it must not receive every message.
      assert.deepEqual(parseDestinationExpression("a@x.net:b@y.net, b@y.net:c@z.net"), [["a@x.net"], ["b@y.net", "c@z.net"]]);
    });

    it("merges the backups of a primary written twice into its first chain instead of making them primaries", () => {
      assert.deepEqual(parseDestinationExpression("a@x.net, a@x.net:b@y.net"), [["a@x.net", "b@y.net"]]);
      assert.deepEqual(parseDestinationExpression("a@x.net:b@y.net, c@z.net, A@X.NET:d@w.net"), [["a@x.net", "b@y.net", "d@w.net"], ["c@z.net"]]);
    });

    it("lists every address at most once in allDestinations after de-duplication", () => {
      const chains = parseDestinationExpression("a@x.net:b@y.net, b@y.net:c@z.net, c@z.net, a@x.net");
      const all = allDestinations(chains).map((address) => address.toLowerCase());
      assert.equal(new Set(all).size, all.length);
      assert.deepEqual(all.toSorted(), ["a@x.net", "b@y.net", "c@z.net"]);
    });
  });

  describe("list input (Cloudflare's forward action holds value[])", () => {
    it("treats each element as a primary", () => {
      assert.deepEqual(parseDestinationExpression(["a@x.net", "b@y.net"]), [["a@x.net"], ["b@y.net"]]);
    });

    it("parses expressions inside elements", () => {
      assert.deepEqual(parseDestinationExpression(["a@x.net:a@y.net, b@z.net", " c@w.net : c@v.net "]), [
        ["a@x.net", "a@y.net"],
        ["b@z.net"],
        ["c@w.net", "c@v.net"],
      ]);
    });

    it("never joins a backup across elements: a colon chain ends with its element", () => {
      assert.deepEqual(parseDestinationExpression(["a@x.net:b@y.net", "c@z.net"]), [["a@x.net", "b@y.net"], ["c@z.net"]]);
    });

    it("removes duplicates across elements", () => {
      assert.deepEqual(parseDestinationExpression(["a@x.net", "A@x.net", "b@y.net, a@X.net"]), [["a@x.net"], ["b@y.net"]]);
    });

    it("skips empty elements as long as one destination remains", () => {
      assert.deepEqual(parseDestinationExpression(["", " ", "a@x.net"]), [["a@x.net"]]);
    });

    it("refuses a list that names no destination", () => {
      assertRefused([], "", /names no destination/);
      assertRefused(["", "  "], ",", /names no destination/);
    });

    it("names the offending element's destination when one is invalid", () => {
      assertRefused(["a@x.net", "bob@"], "bob@", /is not an email address/);
    });
  });

  describe("empty separators", () => {
    it("skips empty primaries from stray, leading or trailing commas", () => {
      assert.deepEqual(parseDestinationExpression(",a@x.net,,b@y.net,"), [["a@x.net"], ["b@y.net"]]);
    });

    it('refuses "::" as an empty backup', () => {
      assertRefused("::", "::", /has an empty backup/);
    });

    it("refuses a trailing colon, naming the primary", () => {
      assertRefused("a@x.net:", "a@x.net:", /has an empty backup/);
      assertRefused("ok@y.net, a@x.net : ", "a@x.net:", /has an empty backup/);
    });

    it("refuses a leading colon, naming the primary", () => {
      assertRefused(":a@x.net", ":a@x.net", /has an empty backup/);
    });

    it("refuses a double colon between backups, naming the primary", () => {
      assertRefused("a@x.net::b@y.net", "a@x.net::b@y.net", /has an empty backup/);
    });
  });

  describe("invalid input", () => {
    it("refuses an empty expression", () => {
      assertRefused("", "", /names no destination/);
      assertRefused("   \n ", "", /names no destination/);
    });

    it('refuses "," as naming no destination', () => {
      assertRefused(",", ",", /names no destination/);
      assertRefused(" , , ", ",,", /names no destination/);
    });

    it('refuses "a@" naming it', () => {
      assertRefused("a@", "a@", /is not an email address/);
    });

    it('refuses "@x.net" naming it', () => {
      assertRefused("@x.net", "@x.net", /is not an email address/);
    });

    it("refuses a bare word and a double @, naming the bad member", () => {
      assertRefused("ok@x.net, nobody", "nobody", /is not an email address/);
      assertRefused("ok@x.net:a@b@y.net", "a@b@y.net", /is not an email address/);
    });

    it("names the first bad backup, not the whole chain", () => {
      assertRefused("good@x.net:bad@-y.net:also@z.net", "bad@-y.net", /is not an email address/);
    });

    it("refuses address literals, trailing dots and dotted-quad domains", () => {
      assertRefused("a@[127.0.0.1]", "a@[127.0.0.1]", /is not an email address/);
      assertRefused("a@x.net.", "a@x.net.", /is not an email address/);
      assertRefused("a@127.0.0.1", "a@127.0.0.1", /is not an email address/);
    });

    it("refuses a semicolon list (the worker's ';' separates destination from reject treatment, not addresses)", () => {
      assertRefused("a@x.net;b@y.net", "a@x.net;b@y.net", /is not an email address/);
    });

    it("produces the operator-facing message the STYLE guide asks for", () => {
      assert.throws(() => parseDestinationExpression("bob@"), { message: 'destination "bob@" is not an email address' });
    });
  });
});

describe("formatDestinationChains", () => {
  it('renders chains as "a:b, c"', () => {
    assert.equal(formatDestinationChains([["a@x.net", "a@y.net"], ["b@z.net"]]), "a@x.net:a@y.net, b@z.net");
  });

  it("renders a single destination plainly", () => {
    assert.equal(formatDestinationChains([["a@x.net"]]), "a@x.net");
  });

  it("round-trips: parsing the formatted form gives the same chains", () => {
    for (const expression of ["a@x.net", "a@x.net:a@y.net, b@z.net", "Bob@Bücher.de : x@y.net, z@w.net:q@r.net:s@t.net"]) {
      const chains = parseDestinationExpression(expression);
      assert.deepEqual(parseDestinationExpression(formatDestinationChains(chains)), chains, expression);
    }
  });

  it("canonicalises spacing and case of domains", () => {
    assert.equal(formatDestinationChains(parseDestinationExpression("  A@X.NET :a@y.net,b@z.net  ")), "A@x.net:a@y.net, b@z.net");
  });
});

describe("allDestinations", () => {
  it("lists every address, primaries and backups, in order", () => {
    assert.deepEqual(allDestinations([["a@x.net", "a@y.net"], ["b@z.net"]]), ["a@x.net", "a@y.net", "b@z.net"]);
  });
});
