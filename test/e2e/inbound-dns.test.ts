import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { testMessage } from "../support/mail-auth-fixtures.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { ProxiedSmtpClient } from "../support/proxied-smtp-client.ts";

// A public client (claimed through the PROXY protocol, so its reverse DNS is looked up)
// whose sender domain's SPF record answers slowly.
const CLIENT = "203.0.113.7";
const PTR_NAME = "7.113.0.203.in-addr.arpa";

describe("inbound DNS lookups of one message (issue 11)", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "proxy-protocol": "127.0.0.1", "trusted-networks": "none" } });
    h.dns.setRecords("slowspf.test", "TXT", [`v=spf1 ip4:${CLIENT} -all`]);
    h.dns.delayFor("slowspf.test", 300);
    h.dns.setRecords("_dmarc.slowspf.test", "TXT", ["v=DMARC1; p=none"]);
    h.dns.setRecords(PTR_NAME, "PTR", ["mail.slowspf.test"]);
    h.dns.setRecords("mail.slowspf.test", "A", [CLIENT]);
    await h.config.zones.create("example.com");
    await h.config.addresses.create("owner@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.reload();
  });

  after(async () => h?.stop());

  it("looks up the client's reverse DNS while authentication waits on DNS, not after it", async () => {
    const { client, greeting } = await ProxiedSmtpClient.connect(h.port, CLIENT);
    assert.equal(greeting.code, 220, greeting.line);
    for (const line of ["EHLO mail.slowspf.test", "MAIL FROM:<alice@slowspf.test>", "RCPT TO:<hello@example.com>", "DATA"]) {
      const reply = await client.command(line);
      assert.ok(reply.code < 400, `${line}: ${reply.line}`);
    }
    const body = testMessage({ from: "alice@slowspf.test", to: "hello@example.com" }).toString("latin1").replace(/^\./gm, "..");
    const reply = await client.command(`${body.replace(/\r?\n$/, "")}\r\n.`);
    assert.equal(reply.code, 250, reply.line);
    await client.quit();

    const queries = h.dns.queries.map((query) => `${query.type} ${query.name}`);
    const ptr = queries.indexOf(`PTR ${PTR_NAME}`);
    const dmarc = queries.indexOf("TXT _dmarc.slowspf.test");
    assert.ok(ptr >= 0 && dmarc >= 0, queries.join(", "));
    // DMARC is asked only once the (slow) SPF answer is in; the PTR question must not wait for it
    assert.ok(ptr < dmarc, `PTR asked after authentication finished: ${queries.join(", ")}`);
    const [received] = h.sinks["dest.test"]!.messages;
    assert.match(received?.text ?? "", /Received: from mail\.slowspf\.test \(mail\.slowspf\.test \[203\.0\.113\.7\]\)|Received: from [^\r\n]*mail\.slowspf\.test[^\r\n]*203\.0\.113\.7/, "the confirmed reverse name is in the trace header");
  });
});
