import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { checkReverseDns } from "../../src/inbound/reverse-dns.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

describe("checkReverseDns (forward-confirmed reverse DNS)", () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer();
    dns.setRecords("5.113.0.203.in-addr.arpa", "PTR", ["mail.sender.test"]);
    dns.setRecords("mail.sender.test", "A", ["203.0.113.5"]);
    dns.setRecords("6.113.0.203.in-addr.arpa", "PTR", ["liar.test"]);
    dns.setRecords("liar.test", "A", ["198.51.100.1"]);
    dns.setRecords("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR", ["v6.sender.test"]);
    dns.setRecords("v6.sender.test", "AAAA", ["2001:db8::1"]);
    dns.setRecords("8.113.0.203.in-addr.arpa", "A", ["127.0.0.1"]); // the name exists, no PTR
    dns.failWith("9.113.0.203.in-addr.arpa", "SERVFAIL");
  });
  after(async () => dns.stop());

  const resolver = () => createDnsTxtResolver({ servers: [dns.address], timeoutMs: 500, tries: 1 });

  it("confirms a PTR name that resolves back to the client", async () => {
    assert.deepEqual(await checkReverseDns("203.0.113.5", resolver()), { verdict: "confirmed", name: "mail.sender.test" });
    assert.deepEqual(await checkReverseDns("::ffff:203.0.113.5", resolver()), { verdict: "confirmed", name: "mail.sender.test" });
    assert.equal((await checkReverseDns("2001:db8::1", resolver())).verdict, "confirmed");
  });

  it("reports a PTR name that points elsewhere as a mismatch", async () => {
    assert.equal((await checkReverseDns("203.0.113.6", resolver())).verdict, "mismatch");
  });

  it("reports no PTR as missing and a failing lookup as unknown", async () => {
    assert.equal((await checkReverseDns("203.0.113.7", resolver())).verdict, "missing");
    assert.equal((await checkReverseDns("203.0.113.8", resolver())).verdict, "missing");
    assert.equal((await checkReverseDns("203.0.113.9", resolver())).verdict, "unknown");
  });

  it("does not look up loopback or private clients", async () => {
    const before = dns.queries.length;
    for (const ip of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "::1"]) assert.equal((await checkReverseDns(ip, resolver())).verdict, "unknown");
    assert.equal(dns.queries.length, before);
  });
});
