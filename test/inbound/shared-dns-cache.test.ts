import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { decodeResponse, DnsFormatError } from "../../src/inbound/dns-message.ts";
import { createTargetResolver, dnsLookupFrom } from "../../src/delivery/mx-resolver.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

// a zone as real ones are: answers for 5 minutes, "no such name" for 5 minutes (SOA minimum)
let zone: TestDnsServer;
// the test default: TTL 0 and no SOA, so nothing may be kept
let uncached: TestDnsServer;

before(async () => {
  zone = await startDnsServer({ ttl: 300 });
  uncached = await startDnsServer();
});
after(async () => {
  await zone.stop();
  await uncached.stop();
});
beforeEach(() => {
  zone.clear();
  uncached.clear();
});

function asked(server: TestDnsServer, name: string, type: string): number {
  return server.queries.filter((query) => query.name === name && query.type === type).length;
}

async function failureCode(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: unknown }).code;
  }
  assert.fail("the lookup resolved");
}

describe("the shared DNS resolver's cache", () => {
  it("answers a second identical question from the cache, within the record's TTL", async () => {
    zone.setRecords("origin.example", "TXT", ["v=spf1 ip4:192.0.2.0/24 -all"]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });

    assert.deepEqual(await resolve("origin.example", "TXT"), [["v=spf1 ip4:192.0.2.0/24 -all"]]);
    assert.deepEqual(await resolve("Origin.Example.", "TXT"), [["v=spf1 ip4:192.0.2.0/24 -all"]]);
    assert.equal(asked(zone, "origin.example", "TXT"), 1);
  });

  it("asks again once the TTL has run out (a TTL of 1 s expires after 1 s)", async () => {
    let now = 1_000_000;
    const short = await startDnsServer({ ttl: 1 });
    try {
      short.setRecords("_dmarc.origin.example", "TXT", ["v=DMARC1; p=none"]);
      const resolve = createDnsTxtResolver({ servers: [short.address], timeoutMs: 1_000, tries: 1, cache: { now: () => now } });
      await resolve("_dmarc.origin.example", "TXT");
      now += 999;
      await resolve("_dmarc.origin.example", "TXT");
      assert.equal(asked(short, "_dmarc.origin.example", "TXT"), 1, "still fresh at 999 ms");
      short.setRecords("_dmarc.origin.example", "TXT", ["v=DMARC1; p=reject"]);
      now += 1;
      assert.deepEqual(await resolve("_dmarc.origin.example", "TXT"), [["v=DMARC1; p=reject"]]);
      assert.equal(asked(short, "_dmarc.origin.example", "TXT"), 2);
    } finally {
      await short.stop();
    }
  });

  it("keeps nothing with TTL 0", async () => {
    uncached.setRecords("origin.example", "TXT", ["v=spf1 -all"]);
    const resolve = createDnsTxtResolver({ servers: [uncached.address], timeoutMs: 1_000, tries: 1 });
    await resolve("origin.example", "TXT");
    await resolve("origin.example", "TXT");
    assert.equal(asked(uncached, "origin.example", "TXT"), 2);
  });

  it("caches NXDOMAIN and NODATA for the SOA's negative TTL, and not at all without an SOA (RFC 2308)", async () => {
    zone.setRecords("origin.example", "A", ["192.0.2.1"]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });
    for (let round = 0; round < 2; round++) {
      assert.equal(await failureCode(resolve("missing.example", "TXT")), "ENOTFOUND");
      assert.equal(await failureCode(resolve("origin.example", "TXT")), "ENODATA");
    }
    assert.equal(asked(zone, "missing.example", "TXT"), 1);
    assert.equal(asked(zone, "origin.example", "TXT"), 1);

    const noSoa = createDnsTxtResolver({ servers: [uncached.address], timeoutMs: 1_000, tries: 1 });
    for (let round = 0; round < 2; round++) assert.equal(await failureCode(noSoa("missing.example", "TXT")), "ENOTFOUND");
    assert.equal(asked(uncached, "missing.example", "TXT"), 2);
  });

  it("never caches SERVFAIL or a timeout: the next message asks again", async () => {
    zone.setRecords("broken.example", "TXT", ["v=spf1 -all"]);
    zone.failWith("broken.example", "SERVFAIL");
    zone.setRecords("slow.example", "TXT", ["v=spf1 -all"]);
    zone.delayFor("slow.example", 1_000);
    const failures: string[] = [];
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 100, tries: 1, onFailure: (type, code) => failures.push(`${type} ${code}`) });

    assert.equal(await failureCode(resolve("broken.example", "TXT")), "ESERVFAIL");
    assert.equal(await failureCode(resolve("slow.example", "TXT")), "ETIMEOUT");
    // each failure is reported (the DNS error metric), a definite "no such record" is not
    assert.equal(await failureCode(resolve("nothing-here.example", "TXT")), "ENOTFOUND");
    assert.deepEqual(failures, ["TXT ESERVFAIL", "TXT ETIMEOUT"]);
    zone.failWith("broken.example", null);
    zone.delayFor("slow.example", 0);
    assert.deepEqual(await resolve("broken.example", "TXT"), [["v=spf1 -all"]]);
    assert.deepEqual(await resolve("slow.example", "TXT"), [["v=spf1 -all"]]);
  });

  it("sends one query for concurrent identical questions", async () => {
    zone.setRecords("origin.example", "TXT", ["v=spf1 -all"]);
    zone.delayFor("origin.example", 100);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 2_000, tries: 1 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => resolve("origin.example", "TXT")));
    assert.equal(answers.length, 10);
    assert.equal(asked(zone, "origin.example", "TXT"), 1);
  });

  it("holds at most maxEntries answers, dropping the least recently used", async () => {
    for (const name of ["a.example", "b.example", "c.example"]) zone.setRecords(name, "A", ["192.0.2.1"]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1, cache: { maxEntries: 2 } });
    await resolve("a.example", "A");
    await resolve("b.example", "A");
    await resolve("a.example", "A"); // a is now the most recently used
    await resolve("c.example", "A"); // evicts b
    await resolve("a.example", "A");
    await resolve("b.example", "A");
    assert.equal(asked(zone, "a.example", "A"), 1);
    assert.equal(asked(zone, "b.example", "A"), 2);
  });

  it("hands out copies: a caller editing an answer does not change the cached one", async () => {
    zone.setRecords("origin.example", "MX", [{ exchange: "mx.origin.example", priority: 10 }]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });
    const first = (await resolve("origin.example", "MX")) as { exchange: string; priority: number }[];
    first[0]!.exchange = "evil.example";
    first.push({ exchange: "other.example", priority: 1 });
    assert.deepEqual(await resolve("origin.example", "MX"), [{ exchange: "mx.origin.example", priority: 10 }]);
  });

  it("follows a CNAME to the records asked for, keeping the answer no longer than any link", async () => {
    zone.setRecords("sel._domainkey.origin.example", "CNAME", ["sel.keys.example"]);
    zone.setRecords("sel.keys.example", "TXT", ["v=DKIM1; p=abc"]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });
    assert.deepEqual(await resolve("sel._domainkey.origin.example", "TXT"), [["v=DKIM1; p=abc"]]);
    assert.deepEqual(await resolve("sel._domainkey.origin.example", "CNAME"), ["sel.keys.example"]);
  });
});

describe("delivery on the shared resolver", () => {
  it("resolves MX targets through it, sharing its cache with authentication's lookups", async () => {
    zone.setRecords("dest.example", "MX", [{ exchange: "mx.dest.example", priority: 10 }]);
    zone.setRecords("mx.dest.example", "A", ["192.0.2.25"]);
    zone.setRecords("mx.dest.example", "AAAA", ["2001:db8::25"]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });
    await resolve("dest.example", "MX"); // as mailauth might have, for the same domain
    const targets = await createTargetResolver({ dns: dnsLookupFrom(resolve), outboundPort: 2525 })("dest.example");
    assert.deepEqual(targets.map((t) => `${t.exchange} ${t.address}`), ["mx.dest.example 2001:db8::25", "mx.dest.example 192.0.2.25"]);
    assert.equal(asked(zone, "dest.example", "MX"), 1);
  });

  it("reads a null MX as RFC 7505 asks: the domain accepts no mail", async () => {
    zone.setRecords("nomail.example", "MX", [{ exchange: ".", priority: 0 }]);
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });
    await assert.rejects(createTargetResolver({ dns: dnsLookupFrom(resolve), outboundPort: 2525 })("nomail.example"), { code: "NULL_MX" });
  });
});

describe("DNS names that cannot be asked", () => {
  it("refuses a label over 63 bytes with EBADNAME, sending nothing", async () => {
    const resolve = createDnsTxtResolver({ servers: [zone.address], timeoutMs: 1_000, tries: 1 });
    const name = `${"a".repeat(64)}.example`;
    assert.equal(await failureCode(resolve(name, "TXT")), "EBADNAME");
    assert.equal(zone.queries.length, 0);
  });
});

describe("DNS response decoding", () => {
  it("refuses a compression pointer loop instead of hanging", () => {
    const header = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
    // the question's name is a pointer to itself (offset 12)
    const loop = Buffer.concat([header, Buffer.from([0xc0, 12, 0, 16, 0, 1])]);
    assert.throws(() => decodeResponse(loop), DnsFormatError);
  });

  it("refuses a record that runs past the end of the message", () => {
    const header = Buffer.from([0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0]);
    const record = Buffer.from([0, 0, 16, 0, 1, 0, 0, 0, 60, 0, 50, 3, 0x61]);
    assert.throws(() => decodeResponse(Buffer.concat([header, record])), DnsFormatError);
  });
});
