import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { authenticate } from "mailauth";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { generateDkimKey, signMessage, testMessage, type SigningDomain } from "../support/mail-auth-fixtures.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { ProxiedSmtpClient } from "../support/proxied-smtp-client.ts";
import { SmtpTestClient } from "../support/smtp-test-client.ts";
import { createTestCa, type TestCa } from "../support/test-ca.ts";

const OUTSIDE = "ip4:192.0.2.1"; // an address that is not ours: SPF fails for loopback clients

async function send(h: Harness, mailFrom: string, message: Buffer) {
  const { client } = await SmtpTestClient.connect(h.port);
  const env = await client.envelope(mailFrom, ["hello@example.com"]);
  assert.equal(env.rcpts[0]!.code, 250, env.rcpts[0]!.line);
  const reply = await client.data(message);
  await client.quit();
  return reply;
}

describe("inbound authentication, signing and TLS end to end", () => {
  let h: Harness;
  let ca: TestCa;
  const good: SigningDomain = { domain: "good.test", selector: "s1", key: generateDkimKey() };
  const other: SigningDomain = { domain: "other.test", selector: "s1", key: generateDkimKey() };
  const soft: SigningDomain = { domain: "soft.test", selector: "s1", key: generateDkimKey() };

  before(async () => {
    ca = createTestCa();
    const leaf = ca.issue("mx", ["mx.mailroute.test"]);
    h = await startHarness({
      destinations: ["dest.test"],
      settings: { "trusted-networks": "none", "tls-cert": leaf.certFile, "tls-key": leaf.keyFile },
      overrides: { authDns: { timeoutMs: 300, tries: 1, maxTimeoutMs: 300 } },
    });
    const dns = h.dns;
    for (const signer of [good, other, soft]) dns.setRecords(`${signer.selector}._domainkey.${signer.domain}`, "TXT", [signer.key.record]);
    dns.setRecords("good.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
    dns.setRecords("_dmarc.good.test", "TXT", ["v=DMARC1; p=reject"]);
    dns.setRecords("other.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
    dns.setRecords("strict.test", "TXT", [`v=spf1 ${OUTSIDE} -all`]);
    dns.setRecords("_dmarc.strict.test", "TXT", ["v=DMARC1; p=reject"]);
    dns.setRecords("quar.test", "TXT", [`v=spf1 ${OUTSIDE} -all`]);
    dns.setRecords("_dmarc.quar.test", "TXT", ["v=DMARC1; p=quarantine"]);
    dns.setRecords("lax.test", "TXT", [`v=spf1 ${OUTSIDE} -all`]);
    dns.setRecords("_dmarc.lax.test", "TXT", ["v=DMARC1; p=none"]);
    dns.setRecords("soft.test", "TXT", [`v=spf1 ${OUTSIDE} ~all`]);
    dns.setRecords("slow.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
    dns.delayFor("slow.test", 3000);
    // What a destination needs to check mailroute's own work: SPF for the SRS domain, our DKIM key.
    dns.setRecords("mx.mailroute.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
    for (const record of await new DkimKeyStore({ dir: join(h.dataDir, "dkim") }).publicRecords("example.com")) {
      dns.setRecords(record.name, "TXT", [record.value]);
    }
    await h.config.zones.create("example.com");
    await h.config.addresses.create("owner@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.reload();
  });

  after(async () => {
    await h?.stop();
    ca?.remove();
  });

  beforeEach(() => h.sinks["dest.test"]!.reset());

  it("forwards DKIM-signed aligned mail, and the destination finds our DKIM and ARC valid and the sender's DKIM intact", async () => {
    const message = await signMessage(testMessage({ from: "alice@good.test", to: "hello@example.com" }), good);
    const reply = await send(h, "alice@good.test", message);
    assert.equal(reply.code, 250, reply.line);
    const [received] = h.sinks["dest.test"]!.messages;
    assert.ok(received);
    assert.match(received.text, /\r\nAuthentication-Results: mx\.mailroute\.test;[^]*dkim=pass[^]*spf=pass[^]*dmarc=pass/);
    const verdict = await authenticate(received.raw, {
      ip: "127.0.0.1",
      helo: "mx.mailroute.test",
      sender: received.from,
      mta: "dest.test",
      resolver: createDnsTxtResolver({ servers: [h.dns.address] }) as never,
    });
    const dkim = verdict.dkim.results.map((result) => `${result.signingDomain}:${result.status.result}`);
    assert.ok(dkim.includes("example.com:pass"), `our signature: ${dkim.join(", ")}`);
    assert.ok(dkim.includes("good.test:pass"), `sender's signature survives: ${dkim.join(", ")}`);
    assert.equal(verdict.arc && verdict.arc.status.result, "pass");
    assert.equal(verdict.spf && verdict.spf.status.result, "pass", "SPF passes for our SRS envelope sender");
    assert.equal(verdict.dmarc && verdict.dmarc.status.result, "pass", "DMARC still passes for the original From");
  });

  it("forwards unsigned mail whose SPF passes and aligns", async () => {
    const reply = await send(h, "bob@good.test", testMessage({ from: "bob@good.test" }));
    assert.equal(reply.code, 250, reply.line);
  });

  it("accepts SPF ~all softfail when an aligned DKIM signature passes", async () => {
    const reply = await send(h, "carol@soft.test", await signMessage(testMessage({ from: "carol@soft.test" }), soft));
    assert.equal(reply.code, 250, reply.line);
  });

  it("refuses a DMARC failure under p=reject with 550 5.7.1", async () => {
    const reply = await send(h, "spoof@strict.test", testMessage({ from: "ceo@strict.test" }));
    assert.equal(reply.code, 550, reply.line);
    assert.equal(reply.enhanced, "5.7.1");
    assert.match(reply.text, /fails DMARC for strict\.test/);
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("refuses a From domain signed only by an unaligned domain (p=reject)", async () => {
    const message = await signMessage(testMessage({ from: "ceo@strict.test" }), other);
    const reply = await send(h, "bulk@other.test", message);
    assert.equal(reply.code, 550, reply.line);
    assert.equal(reply.enhanced, "5.7.1");
  });

  it("accepts and marks a DMARC failure under p=quarantine (SPF passes, but for an unaligned domain)", async () => {
    const reply = await send(h, "bulk@other.test", testMessage({ from: "x@quar.test" }));
    assert.equal(reply.code, 250, reply.line);
    assert.match(h.sinks["dest.test"]!.messages[0]!.text, /\r\nX-Mailroute-Auth-Warning: dmarc-quarantine/);
  });

  it("refuses mail that passes neither SPF nor DKIM with 550 5.7.26, even under p=none", async () => {
    const reply = await send(h, "x@lax.test", testMessage({ from: "x@lax.test" }));
    assert.equal(reply.code, 550, reply.line);
    assert.equal(reply.enhanced, "5.7.26");
  });

  it("answers 451 4.7.0 when DNS times out during authentication, never a permanent refusal", async () => {
    const reply = await send(h, "x@slow.test", testMessage({ from: "x@slow.test" }));
    assert.equal(reply.code, 451, reply.line);
    assert.equal(reply.enhanced, "4.7.0");
  });

  it("lets the operator relax each policy per zone", async () => {
    await h.config.zones.update("example.com", { requireAuth: false, enforceDmarc: false });
    await h.reload();
    try {
      assert.equal((await send(h, "x@lax.test", testMessage({ from: "x@lax.test" }))).code, 250);
      assert.equal((await send(h, "spoof@strict.test", testMessage({ from: "ceo@strict.test" }))).code, 250);
    } finally {
      await h.config.zones.update("example.com", { requireAuth: true, enforceDmarc: true });
      await h.reload();
    }
  });

  it("refuses above the zone's spam threshold", async () => {
    await h.config.zones.update("example.com", { spamThreshold: 0.5, requireAuth: false });
    await h.reload();
    try {
      const reply = await send(h, "x@lax.test", testMessage({ from: "x@lax.test" }));
      assert.equal(reply.code, 550, reply.line);
      assert.match(reply.text, /spam \(score [\d.]+, above 0\.5\)/);
    } finally {
      await h.config.zones.update("example.com", { spamThreshold: null, requireAuth: true });
      await h.reload();
    }
  });

  it("offers STARTTLS with the configured certificate, verifiable with the test CA", async () => {
    const connection = new SMTPConnection({ host: "127.0.0.1", port: h.port, requireTLS: true, tls: { ca: ca.cert, servername: "mx.mailroute.test" }, name: "client.test", logger: false } as never);
    await new Promise<void>((resolve, reject) => {
      connection.once("error", reject);
      connection.connect(() => resolve());
    });
    assert.equal((connection as unknown as { secure: boolean }).secure, true);
    const info = await new Promise<{ response?: string }>((resolve, reject) =>
      connection.send({ from: "bob@good.test", to: ["hello@example.com"] }, testMessage({ from: "bob@good.test" }), (error: Error | null, result: { response?: string }) => (error ? reject(error) : resolve(result))),
    );
    connection.quit();
    assert.match(info.response ?? "", /^250 /);
    assert.match(h.sinks["dest.test"]!.messages[0]!.text, /with ESMTPS id /, "the trace header records TLS");
  });
});

describe("abuse defences end to end (clients behind a PROXY-protocol balancer)", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({
      destinations: ["dest.test"],
      settings: {
        "proxy-protocol": "127.0.0.1",
        dnsbl: "bl.test",
        "trusted-networks": "none",
        "max-connections-per-ip": "2",
        "messages-per-minute": "3",
        "max-commands-before-mail": "5",
      },
    });
    h.dns.setRecords("5.113.0.203.bl.test", "A", ["127.0.0.2"]);
    await h.config.zones.create("example.com");
    await h.reload();
  });

  after(async () => h?.stop());

  it("refuses a client on a DNS block list at connect with 554 5.7.1 naming the list", async () => {
    const { client, greeting } = await ProxiedSmtpClient.connect(h.port, "203.0.113.5");
    assert.equal(greeting.code, 554, greeting.line);
    assert.equal(greeting.enhanced, "5.7.1");
    assert.match(greeting.text, /203\.0\.113\.5\] blocked using bl\.test/);
    client.destroy();
    const clean = await ProxiedSmtpClient.connect(h.port, "203.0.113.6");
    assert.equal(clean.greeting.code, 220);
    await clean.client.quit();
  });

  it("refuses a third concurrent connection from one address with 421 4.7.0", async () => {
    const first = await ProxiedSmtpClient.connect(h.port, "198.51.100.7");
    const second = await ProxiedSmtpClient.connect(h.port, "198.51.100.7");
    const third = await ProxiedSmtpClient.connect(h.port, "198.51.100.7");
    assert.equal(first.greeting.code, 220);
    assert.equal(second.greeting.code, 220);
    assert.equal(third.greeting.code, 421, third.greeting.line);
    assert.equal(third.greeting.enhanced, "4.7.0");
    const elsewhere = await ProxiedSmtpClient.connect(h.port, "198.51.100.99");
    assert.equal(elsewhere.greeting.code, 220, "other clients are not affected");
    for (const c of [first, second, third, elsewhere]) c.client.destroy();
  });

  it("refuses messages over the per-minute rate with 451 4.7.1", async () => {
    const { client } = await ProxiedSmtpClient.connect(h.port, "198.51.100.8");
    await client.command("EHLO client.test");
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await client.command("MAIL FROM:<a@good.test>");
      codes.push(reply.code);
      if (reply.code === 451) assert.equal(reply.enhanced, "4.7.1");
      await client.command("RSET");
    }
    assert.deepEqual(codes, [250, 250, 250, 451]);
    await client.quit();
  });

  it("closes a session that sends too many commands before MAIL with 421 4.7.0", async () => {
    const { client } = await ProxiedSmtpClient.connect(h.port, "198.51.100.9");
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await client.command("NOOP")).code);
    assert.deepEqual(codes, [250, 250, 250, 250, 250, 421]);
    await client.closed;
  });
});
