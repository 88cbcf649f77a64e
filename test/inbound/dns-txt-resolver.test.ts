import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

let dns: TestDnsServer;

before(async () => {
  dns = await startDnsServer();
});
after(() => dns.stop());
beforeEach(() => dns.clear());

function resolver(options: { timeoutMs?: number; tries?: number } = {}) {
  return createDnsTxtResolver({ servers: [dns.address], timeoutMs: options.timeoutMs ?? 500, tries: options.tries ?? 1, maxTimeoutMs: 1_000 });
}

async function failureCode(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: unknown }).code;
  }
  assert.fail("the lookup resolved");
}

describe("DNS resolver for message authentication", () => {
  it("answers TXT as lists of character-strings, as dns.promises.resolve does", async () => {
    const long = `v=DKIM1; k=rsa; p=${"A".repeat(400)}`;
    dns.setRecords("sel._domainkey.sender.example", "TXT", [long]);

    const answer = (await resolver()("sel._domainkey.sender.example", "TXT")) as string[][];

    assert.equal(answer.length, 1);
    assert.ok((answer[0]?.length ?? 0) > 1, "a record over 255 bytes arrives as several character-strings");
    assert.equal(answer[0]?.join(""), long);
  });

  it("answers the other types mailauth asks for (MX, A, AAAA) in their usual shapes", async () => {
    dns.setRecords("sender.example", "MX", [{ exchange: "mx.sender.example", priority: 10 }]);
    dns.setRecords("mx.sender.example", "A", ["192.0.2.1"]);
    dns.setRecords("mx.sender.example", "AAAA", ["2001:db8::1"]);
    const resolve = resolver();

    const mx = (await resolve("sender.example", "MX")) as { exchange: string; priority: number }[];
    assert.deepEqual(mx.map(({ exchange, priority }) => ({ exchange, priority })), [{ exchange: "mx.sender.example", priority: 10 }]);
    assert.deepEqual(await resolve("mx.sender.example", "A"), ["192.0.2.1"]);
    assert.deepEqual(await resolve("mx.sender.example", "AAAA"), ["2001:db8::1"]);
  });

  it("keeps ENOTFOUND for a name that does not exist and ENODATA for one without the type (mailauth: none)", async () => {
    dns.setRecords("sender.example", "A", ["192.0.2.1"]);
    const resolve = resolver();

    assert.equal(await failureCode(resolve("missing.example", "TXT")), "ENOTFOUND");
    assert.equal(await failureCode(resolve("sender.example", "TXT")), "ENODATA");
  });

  it("keeps ESERVFAIL, EREFUSED and ETIMEOUT (mailauth: temperror)", async () => {
    dns.setRecords("broken.example", "TXT", ["v=spf1 -all"]);
    dns.failWith("broken.example", "SERVFAIL");
    dns.setRecords("refused.example", "TXT", ["v=spf1 -all"]);
    dns.failWith("refused.example", "REFUSED");
    dns.setRecords("slow.example", "TXT", ["v=spf1 -all"]);
    dns.delayFor("slow.example", 2_000);
    const resolve = resolver({ timeoutMs: 200, tries: 1 });

    assert.equal(await failureCode(resolve("broken.example", "TXT")), "ESERVFAIL");
    assert.equal(await failureCode(resolve("refused.example", "TXT")), "EREFUSED");
    assert.equal(await failureCode(resolve("slow.example", "TXT")), "ETIMEOUT");
  });

  it("cancels one query on its signal without disturbing another in flight", async () => {
    dns.setRecords("slow.example", "TXT", ["v=spf1 -all"]);
    dns.delayFor("slow.example", 300);
    dns.setRecords("other.example", "TXT", ["v=spf1 +all"]);
    dns.delayFor("other.example", 300);
    const resolve = resolver({ timeoutMs: 2_000 });
    const controller = new AbortController();

    const cancelled = failureCode(resolve("slow.example", "TXT", { signal: controller.signal }));
    const other = resolve("other.example", "TXT");
    controller.abort();

    assert.equal(await cancelled, "ECANCELLED");
    assert.deepEqual(await other, [["v=spf1 +all"]]);
    assert.equal(await failureCode(resolve("other.example", "TXT", { signal: controller.signal })), "ECANCELLED", "an aborted signal sends no query");
  });

  it("refuses a malformed --dns-servers entry at creation, naming it", () => {
    assert.throws(() => createDnsTxtResolver({ servers: ["not a server"] }), /DNS server "not a server"/);
    assert.throws(() => createDnsTxtResolver({ timeoutMs: 0 }), /timeoutMs/);
  });
});
