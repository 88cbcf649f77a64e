import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import {
  createSystemDns,
  createTargetResolver,
  parseTransportMap,
  type TargetResolverOptions,
} from "../../src/delivery/mx-resolver.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

const OUTBOUND_PORT = 2525;
let dns: TestDnsServer;

before(async () => {
  dns = await startDnsServer();
});
after(() => dns.stop());
beforeEach(() => dns.clear());

function resolver(options: Partial<TargetResolverOptions> = {}) {
  return createTargetResolver({ dns: createSystemDns([dns.address]), outboundPort: OUTBOUND_PORT, ...options });
}

function summary(targets: { exchange: string; address: string }[]): string[] {
  return targets.map((target) => `${target.exchange} ${target.address}`);
}

describe("delivery targets from MX records", () => {
  it("orders exchanges by MX preference, lowest first, on the outbound port", async () => {
    dns.setRecords("example.com", "MX", [
      { exchange: "mx30.example.com", priority: 30 },
      { exchange: "mx10.example.com", priority: 10 },
      { exchange: "mx20.example.com", priority: 20 },
    ]);
    dns.setRecords("mx10.example.com", "A", ["192.0.2.10"]);
    dns.setRecords("mx20.example.com", "A", ["192.0.2.20"]);
    dns.setRecords("mx30.example.com", "A", ["192.0.2.30"]);

    const targets = await resolver()("example.com");

    assert.deepEqual(targets, [
      { exchange: "mx10.example.com", address: "192.0.2.10", port: OUTBOUND_PORT, family: 4, preference: 10 },
      { exchange: "mx20.example.com", address: "192.0.2.20", port: OUTBOUND_PORT, family: 4, preference: 20 },
      { exchange: "mx30.example.com", address: "192.0.2.30", port: OUTBOUND_PORT, family: 4, preference: 30 },
    ]);
  });

  it("tries IPv6 addresses before IPv4 within one exchange", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: "mx.example.com", priority: 10 }]);
    dns.setRecords("mx.example.com", "A", ["192.0.2.1"]);
    dns.setRecords("mx.example.com", "AAAA", ["2001:db8::1"]);

    const targets = await resolver()("example.com");

    assert.deepEqual(
      targets.map((target) => [target.family, target.address]),
      [
        [6, "2001:db8::1"],
        [4, "192.0.2.1"],
      ],
    );
  });

  it("keeps MX preference above address family", async () => {
    dns.setRecords("example.com", "MX", [
      { exchange: "v6.example.com", priority: 20 },
      { exchange: "v4.example.com", priority: 10 },
    ]);
    dns.setRecords("v4.example.com", "A", ["192.0.2.4"]);
    dns.setRecords("v6.example.com", "AAAA", ["2001:db8::6"]);

    assert.deepEqual(summary(await resolver()("example.com")), ["v4.example.com 192.0.2.4", "v6.example.com 2001:db8::6"]);
  });

  it("shuffles exchanges of equal preference (RFC 5321 §5.1)", async () => {
    dns.setRecords("example.com", "MX", [
      { exchange: "a.example.com", priority: 10 },
      { exchange: "b.example.com", priority: 10 },
      { exchange: "backup.example.com", priority: 20 },
    ]);
    dns.setRecords("a.example.com", "A", ["192.0.2.1"]);
    dns.setRecords("b.example.com", "A", ["192.0.2.2"]);
    dns.setRecords("backup.example.com", "A", ["192.0.2.3"]);

    const low = await resolver({ random: () => 0 })("example.com");
    const high = await resolver({ random: () => 0.99 })("example.com");

    assert.deepEqual(
      [low, high].map((targets) => targets.map((target) => target.exchange)),
      [
        ["b.example.com", "a.example.com", "backup.example.com"],
        ["a.example.com", "b.example.com", "backup.example.com"],
      ],
    );
  });

  it("delivers to the domain's own addresses when it has no MX (implicit MX, RFC 5321 §5.1)", async () => {
    dns.setRecords("example.com", "A", ["192.0.2.1"]);
    dns.setRecords("example.com", "AAAA", ["2001:db8::1"]);

    const targets = await resolver()("example.com");

    assert.deepEqual(targets, [
      { exchange: "example.com", address: "2001:db8::1", port: OUTBOUND_PORT, family: 6, preference: 0 },
      { exchange: "example.com", address: "192.0.2.1", port: OUTBOUND_PORT, family: 4, preference: 0 },
    ]);
  });

  it("skips an exchange that has no address", async () => {
    dns.setRecords("example.com", "MX", [
      { exchange: "gone.example.com", priority: 10 },
      { exchange: "mx.example.com", priority: 20 },
    ]);
    dns.setRecords("mx.example.com", "A", ["192.0.2.1"]);

    assert.deepEqual(summary(await resolver()("example.com")), ["mx.example.com 192.0.2.1"]);
  });

  it("lists an address once when two exchanges share it", async () => {
    dns.setRecords("example.com", "MX", [
      { exchange: "mx1.example.com", priority: 10 },
      { exchange: "mx2.example.com", priority: 20 },
    ]);
    dns.setRecords("mx1.example.com", "A", ["192.0.2.1"]);
    dns.setRecords("mx2.example.com", "A", ["192.0.2.1", "192.0.2.2"]);

    assert.deepEqual(summary(await resolver()("example.com")), ["mx1.example.com 192.0.2.1", "mx2.example.com 192.0.2.2"]);
  });

  it("tolerates an MX exchange written as an IP literal", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: "192.0.2.7", priority: 10 }]);

    assert.deepEqual(summary(await resolver()("example.com")), ["192.0.2.7 192.0.2.7"]);
  });

  it("returns at most ten targets", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: "mx.example.com", priority: 10 }]);
    dns.setRecords(
      "mx.example.com",
      "A",
      Array.from({ length: 15 }, (_, i) => `192.0.2.${i + 1}`),
    );

    assert.equal((await resolver()("example.com")).length, 10);
  });

  it("looks up a Unicode domain by its IDNA form", async () => {
    dns.setRecords("xn--bcher-kva.example", "MX", [{ exchange: "mx.xn--bcher-kva.example", priority: 10 }]);
    dns.setRecords("mx.xn--bcher-kva.example", "A", ["192.0.2.1"]);

    assert.deepEqual(summary(await resolver()("Bücher.example.")), ["mx.xn--bcher-kva.example 192.0.2.1"]);
  });
});

describe("delivery target failures", () => {
  it("refuses permanently a domain that publishes a null MX (RFC 7505)", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: ".", priority: 0 }]);
    dns.setRecords("example.com", "A", ["192.0.2.1"]);

    await assert.rejects(resolver()("example.com"), {
      name: "DeliveryTargetError",
      code: "NULL_MX",
      temporary: false,
      domain: "example.com",
    });
    assert.deepEqual(dns.queries, [{ name: "example.com", type: "MX" }], "a null MX must not fall back to the domain's A record");
  });

  it("refuses permanently a domain that does not exist", async () => {
    await assert.rejects(resolver()("nowhere.example"), { code: "NXDOMAIN", temporary: false });
  });

  it("refuses permanently an input that is not a domain name", async () => {
    await assert.rejects(resolver()("exa mple..com"), { code: "BAD_DOMAIN", temporary: false });
  });

  it("fails temporarily with NO_ADDRESS when no exchange has an address", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: "gone.example.com", priority: 10 }]);

    await assert.rejects(resolver()("example.com"), { code: "NO_ADDRESS", temporary: true });
  });

  it("fails temporarily when the DNS server answers SERVFAIL", async () => {
    dns.failWith("example.com", "SERVFAIL");

    await assert.rejects(resolver()("example.com"), { code: "DNS_TEMPFAIL", temporary: true });
  });

  it("fails temporarily when every exchange's address lookup fails", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: "mx.example.com", priority: 10 }]);
    dns.failWith("mx.example.com", "SERVFAIL");

    await assert.rejects(resolver()("example.com"), { code: "DNS_TEMPFAIL", temporary: true });
  });

  it("fails temporarily with DNS_TEMPFAIL when the DNS server is too slow", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: "mx.example.com", priority: 10 }]);
    dns.delayFor("example.com", 5_000);

    await assert.rejects(resolver({ timeoutMs: 100 })("example.com"), { code: "DNS_TEMPFAIL", temporary: true });
  });

  it("delivers to the exchanges that answered in time when another hangs", async () => {
    dns.setRecords("example.com", "MX", [
      { exchange: "slow.example.com", priority: 10 },
      { exchange: "mx.example.com", priority: 20 },
    ]);
    dns.setRecords("slow.example.com", "A", ["192.0.2.1"]);
    dns.setRecords("mx.example.com", "A", ["192.0.2.2"]);
    dns.delayFor("slow.example.com", 5_000);

    assert.deepEqual(summary(await resolver({ timeoutMs: 200 })("example.com")), ["mx.example.com 192.0.2.2"]);
  });
});

describe("static transports", () => {
  it("routes a transport domain to its address and port without asking DNS", async () => {
    const resolve = resolver({ transports: parseTransportMap("Example.COM=127.0.0.1:2526") });

    assert.deepEqual(await resolve("example.com"), [
      { exchange: "127.0.0.1", address: "127.0.0.1", port: 2526, family: 4, preference: 0 },
    ]);
    assert.deepEqual(dns.queries, []);
  });

  it("resolves a transport host name through its A and AAAA records", async () => {
    dns.setRecords("relay.internal", "A", ["192.0.2.9"]);
    dns.setRecords("relay.internal", "AAAA", ["2001:db8::9"]);
    const resolve = resolver({ transports: parseTransportMap("example.com=relay.internal:587") });

    const targets = await resolve("example.com");

    assert.deepEqual(
      targets.map((target) => [target.address, target.port]),
      [
        ["2001:db8::9", 587],
        ["192.0.2.9", 587],
      ],
    );
    assert.ok(!dns.queries.some((query) => query.type === "MX"));
  });

  it("applies a transport to its exact domain only, not to sub-domains", async () => {
    dns.setRecords("sub.example.com", "MX", [{ exchange: "mx.example.com", priority: 10 }]);
    dns.setRecords("mx.example.com", "A", ["192.0.2.1"]);
    const resolve = resolver({ transports: parseTransportMap("example.com=[::1]:2526") });

    assert.deepEqual(summary(await resolve("sub.example.com")), ["mx.example.com 192.0.2.1"]);
  });
});

describe("parseTransportMap", () => {
  it("reads domain=host:port entries, with IPv6 hosts in brackets", () => {
    const routes = parseTransportMap(" example.com=127.0.0.1:2526, Other.ORG=[::1]:25,bücher.example=Relay.Internal.:587, ");

    assert.deepEqual(
      [...routes],
      [
        ["example.com", { host: "127.0.0.1", port: 2526 }],
        ["other.org", { host: "::1", port: 25 }],
        ["xn--bcher-kva.example", { host: "relay.internal", port: 587 }],
      ],
    );
  });

  it("reads an empty specification as no transports", () => {
    assert.equal(parseTransportMap("").size, 0);
  });

  for (const [spec, complaint] of [
    ["example.com", /transport "example.com": expected domain=host:port/],
    ["example.com=relay.internal", /transport "example.com=relay.internal": expected host:port/],
    ["example.com=::1:25", /transport "example.com=::1:25": IPv6 address must be bracketed/],
    ["example.com=[relay]:25", /transport "example.com=\[relay\]:25": "\[relay\]" is not an IPv6 address/],
    ["example.com=relay:0", /transport "example.com=relay:0": port 0 is out of range/],
    ["example.com=relay:65536", /port 65536 is out of range/],
    ["=relay:25", /transport "=relay:25": "" is not a domain name/],
    ["a.example=relay:25,A.example=relay:26", /transport "A.example=relay:26": domain "a.example" already has a transport/],
  ] as const) {
    it(`rejects "${spec}", naming the entry`, () => {
      assert.throws(() => parseTransportMap(spec), complaint);
    });
  }
});

describe("system DNS", () => {
  it("rejects a DNS server that is not an IP address, naming it", () => {
    assert.throws(() => createSystemDns(["dns.example:53"]), /DNS server "dns.example:53"/);
  });

  it("reads a null MX through the real resolver as an empty exchange", async () => {
    dns.setRecords("example.com", "MX", [{ exchange: ".", priority: 0 }]);

    assert.deepEqual(await createSystemDns([dns.address]).resolveMx("example.com"), [{ exchange: "", priority: 0, type: "MX" }]);
  });
});
