import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import { after, before, beforeEach, describe, it } from "node:test";
import { createDnsblChecker, type DnsblCheckerOptions, type LookupA } from "../../src/inbound/dnsbl-checker.ts";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

let dns: TestDnsServer;

before(async () => {
  dns = await startDnsServer();
});
after(() => dns.stop());
beforeEach(() => dns.clear());

/** A real resolver pointed at the loopback DNS server; abort cancels the query, as in production. */
function lookupVia(server: TestDnsServer): LookupA {
  // the production resolver, used exactly as start-service wires the block-list checker
  const resolver = createDnsTxtResolver({ servers: [server.address], timeoutMs: 3_000, tries: 1 });
  return (name, options) => resolver(name, "A", options) as Promise<string[]>;
}

function checker(options: Partial<DnsblCheckerOptions> = {}) {
  return createDnsblChecker({ zones: ["bl.test"], lookupA: lookupVia(dns), timeoutMs: 1_000, cacheTtlMs: 60_000, ...options });
}

function queried(): string[] {
  return dns.queries.map((query) => `${query.type} ${query.name}`);
}

describe("DNSBL checks (RFC 5782)", () => {
  it("reports a listed IPv4 client with the zone and its return codes, queried with reversed octets", async () => {
    dns.setRecords("7.2.0.192.bl.test", "A", ["127.0.0.4", "127.0.0.2"]);

    const verdict = await checker().check("192.0.2.7");

    assert.deepEqual(verdict, { listed: true, zone: "bl.test", codes: ["127.0.0.2", "127.0.0.4"] });
    assert.deepEqual(queried(), ["A 7.2.0.192.bl.test"]);
  });

  it("queries an IPv6 client with its 32 nibbles reversed (RFC 5782 §2.4)", async () => {
    // the RFC's own example address and name
    const name = "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test";
    dns.setRecords(name, "A", ["127.0.0.2"]);

    const verdict = await checker().check("2001:db8:1:2:3:4:567:89ab");

    assert.deepEqual(verdict, { listed: true, zone: "bl.test", codes: ["127.0.0.2"] });
    assert.deepEqual(queried(), [`A ${name}`]);
  });

  it("expands a compressed IPv6 address before reversing it", async () => {
    await checker().check("2001:DB8::1");
    assert.deepEqual(queried(), ["A 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"]);
  });

  it("queries an IPv4-mapped IPv6 client as the IPv4 address it is", async () => {
    dns.setRecords("7.2.0.192.bl.test", "A", ["127.0.0.2"]);
    const verdict = await checker().check("::ffff:192.0.2.7");
    assert.equal(verdict.listed, true);
    assert.deepEqual(queried(), ["A 7.2.0.192.bl.test"]);
  });

  it("reports an address the list does not hold (NXDOMAIN) as not listed", async () => {
    assert.deepEqual(await checker().check("192.0.2.8"), { listed: false, unavailable: [] });
  });

  it("reports a name with no A record (NODATA) as not listed", async () => {
    dns.setRecords("8.2.0.192.bl.test", "TXT", ["listed elsewhere"]);
    assert.deepEqual(await checker().check("192.0.2.8"), { listed: false, unavailable: [] });
  });

  it("fails open when a zone does not answer in time, names it, and settles at the timeout", async () => {
    dns.setRecords("9.2.0.192.bl.test", "A", ["127.0.0.2"]);
    dns.delayFor("9.2.0.192.bl.test", 3_000);
    const started = Date.now();

    const verdict = await checker({ timeoutMs: 200 }).check("192.0.2.9");

    assert.deepEqual(verdict, { listed: false, unavailable: [{ zone: "bl.test", reason: "timeout" }] });
    assert.ok(Date.now() - started < 2_500, "did not wait for the DNS answer");
  });

  it("fails open when a zone answers SERVFAIL, and reports it (the DNSBL error metric), never a clear answer", async () => {
    dns.failWith("9.2.0.192.bl.test", "SERVFAIL");
    const reported: string[] = [];
    assert.deepEqual(await checker({ onUnavailable: (zone, reason) => reported.push(`${zone} ${reason}`) }).check("192.0.2.9"), { listed: false, unavailable: [{ zone: "bl.test", reason: "ESERVFAIL" }] });
    assert.deepEqual(reported, ["bl.test ESERVFAIL"]);
    dns.failWith("9.2.0.192.bl.test", null);
    await checker({ onUnavailable: (zone, reason) => reported.push(`${zone} ${reason}`) }).check("192.0.2.10");
    assert.deepEqual(reported, ["bl.test ESERVFAIL"], "an unlisted address is not an error");
  });

  it("does not cache a verdict from a zone that did not answer, so the next client is checked again", async () => {
    const bl = checker({ timeoutMs: 200 });
    dns.delayFor("9.2.0.192.bl.test", 3_000);
    await bl.check("192.0.2.9");
    dns.delayFor("9.2.0.192.bl.test", 0);
    dns.setRecords("9.2.0.192.bl.test", "A", ["127.0.0.2"]);

    assert.equal((await bl.check("192.0.2.9")).listed, true);
  });

  it("fails open when the lookup itself throws", async () => {
    const throwing: LookupA = () => {
      throw new Error("resolver misconfigured");
    };
    assert.deepEqual(await checker({ lookupA: throwing }).check("192.0.2.9"), {
      listed: false,
      unavailable: [{ zone: "bl.test", reason: "Error: resolver misconfigured" }],
    });
  });

  it("ignores Spamhaus's 127.255.255.x 'query refused' codes: not a listing, reported as unavailable", async () => {
    dns.setRecords("7.2.0.192.bl.test", "A", ["127.255.255.254"]);
    assert.deepEqual(await checker().check("192.0.2.7"), {
      listed: false,
      unavailable: [{ zone: "bl.test", reason: "refused 127.255.255.254" }],
    });
  });

  it("does not count an answer outside 127.0.0.0/8 as a listing (a resolver rewriting NXDOMAIN)", async () => {
    dns.setRecords("7.2.0.192.bl.test", "A", ["198.51.100.80"]);
    assert.deepEqual(await checker().check("192.0.2.7"), {
      listed: false,
      unavailable: [{ zone: "bl.test", reason: "answer 198.51.100.80 outside 127.0.0.0/8" }],
    });
  });

  describe("several zones", () => {
    const zones = ["first.test", "second.test"];

    it("names the zone that lists the client", async () => {
      dns.setRecords("7.2.0.192.second.test", "A", ["127.0.0.3"]);
      assert.deepEqual(await checker({ zones }).check("192.0.2.7"), { listed: true, zone: "second.test", codes: ["127.0.0.3"] });
    });

    it("names the first zone in configured order when several list the client", async () => {
      dns.setRecords("7.2.0.192.first.test", "A", ["127.0.0.2"]);
      dns.setRecords("7.2.0.192.second.test", "A", ["127.0.0.10"]);
      assert.deepEqual(await checker({ zones }).check("192.0.2.7"), { listed: true, zone: "first.test", codes: ["127.0.0.2"] });
    });

    it("still refuses on a listing when another zone timed out", async () => {
      dns.delayFor("7.2.0.192.first.test", 3_000);
      dns.setRecords("7.2.0.192.second.test", "A", ["127.0.0.2"]);
      assert.deepEqual(await checker({ zones, timeoutMs: 200 }).check("192.0.2.7"), { listed: true, zone: "second.test", codes: ["127.0.0.2"] });
    });

    it("queries every zone at once, not one after the other", async () => {
      dns.delayFor("7.2.0.192.first.test", 400);
      dns.delayFor("7.2.0.192.second.test", 400);
      const pending = checker({ zones }).check("192.0.2.7");
      await new Promise((resolve) => setTimeout(resolve, 150));
      // both questions arrived while the first was still being held back
      assert.deepEqual(queried().sort(), ["A 7.2.0.192.first.test", "A 7.2.0.192.second.test"]);
      assert.deepEqual(await pending, { listed: false, unavailable: [] });
    });
  });

  describe("cache", () => {
    it("answers a client seen recently without querying again, listed or not", async () => {
      let clock = 0;
      const bl = checker({ now: () => clock });
      dns.setRecords("7.2.0.192.bl.test", "A", ["127.0.0.2"]);
      await bl.check("192.0.2.7");
      await bl.check("192.0.2.8");
      const asked = dns.queries.length;

      clock += 59_000;
      assert.equal((await bl.check("192.0.2.7")).listed, true);
      assert.equal((await bl.check("::ffff:192.0.2.8")).listed, false);
      assert.equal(dns.queries.length, asked);

      clock += 1_000; // the TTL is over: asked again
      await bl.check("192.0.2.7");
      assert.equal(dns.queries.length, asked + 1);
    });

    it("shares one set of queries between concurrent checks of one client", async () => {
      dns.delayFor("7.2.0.192.bl.test", 100);
      const bl = checker();
      await Promise.all(Array.from({ length: 10 }, () => bl.check("192.0.2.7")));
      assert.deepEqual(queried(), ["A 7.2.0.192.bl.test"]);
    });

    it("holds at most maxCacheEntries verdicts, dropping the oldest first", async () => {
      const bl = checker({ maxCacheEntries: 3 });
      for (const last of [1, 2, 3, 4, 5]) await bl.check(`192.0.2.${last}`);
      assert.equal(bl.cacheSize, 3);
      const asked = dns.queries.length;

      await bl.check("192.0.2.5"); // kept
      assert.equal(dns.queries.length, asked);
      await bl.check("192.0.2.1"); // dropped
      assert.equal(dns.queries.length, asked + 1);
      assert.equal(bl.cacheSize, 3);
    });
  });

  it("never queries loopback, private, link-local, CGNAT or unique-local clients", async () => {
    // 127.0.0.2 is every DNSBL's RFC 5782 §5 test entry: checking it would refuse a local client
    dns.setRecords("2.0.0.127.bl.test", "A", ["127.0.0.2"]);
    const bl = checker();
    for (const address of ["127.0.0.2", "::ffff:127.0.0.2", "10.1.2.3", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.1.1", "::1", "fe80::1%eth0", "fd00::25", "0.0.0.0"]) {
      assert.deepEqual(await bl.check(address), { listed: false, unavailable: [] }, address);
    }
    assert.deepEqual(queried(), []);
  });

  it("checks nothing without zones (the dev default)", async () => {
    assert.deepEqual(await checker({ zones: [] }).check("192.0.2.7"), { listed: false, unavailable: [] });
    assert.deepEqual(queried(), []);
  });

  it("refuses a zone that is not a domain name, naming it", () => {
    assert.throws(() => checker({ zones: ["zen.spamhaus.org", "bad zone"] }), /dnsbl zone "bad zone": not a domain name/);
  });

  it("accepts zones in any case and with a trailing dot", () => {
    assert.deepEqual(checker({ zones: ["ZEN.Spamhaus.org.", "zen.spamhaus.org"] }).zones, ["zen.spamhaus.org"]);
  });
});
