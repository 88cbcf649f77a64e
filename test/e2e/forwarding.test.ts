import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { SrsRewriter } from "../../src/delivery/srs-rewriter.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { startSmtpSink } from "../support/smtp-sink.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

async function send(h: Harness, from: string, to: string[], message = testMessage({ from, to: to[0] })) {
  const { client } = await SmtpTestClient.connect(h.port);
  const env = await client.envelope(from, to);
  const data = env.rcpts.some((r) => r.code === 250) ? await client.data(message) : null;
  await client.quit();
  return { ...env, data };
}

describe("forwarding end to end", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test", "backup.test", "other.test", "flaky.test"], transports: { "static.test": "other.test" } });
    // RFC 7505 null MX: nullmx.test accepts no mail at all.
    h.dns.setRecords("nullmx.test", "MX", [{ exchange: ".", priority: 0 }]);
    // down.test's MX points at a loopback address where nothing listens: connection refused.
    h.dns.setRecords("down.test", "MX", [{ exchange: "mx.down.test", priority: 10 }]);
    h.dns.setRecords("mx.down.test", "A", ["127.0.0.99"]);
    h.sinks["flaky.test"]!.dropConnections(true);
    await h.config.zones.create("example.com", { supportSubaddress: true });
    await h.config.zones.create("nosub.example", { supportSubaddress: false });
    for (const address of ["n@nullmx.test", "s@static.test", "x@down.test", "y@flaky.test", "alice@dest.test", "bob@dest.test", "carol@backup.test", "dave@other.test", "erin@dest.test"]) {
      await h.config.addresses.create(address, { verified: true });
    }
    await h.config.addresses.create("unverified@dest.test");
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "team@example.com" }], actions: [{ type: "forward", value: ["alice@dest.test, dave@other.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "failover@example.com" }], actions: [{ type: "forward", value: ["bob@dest.test:carol@backup.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "refused@example.com" }], actions: [{ type: "forward", value: ["x@down.test : carol@backup.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "dropped@example.com" }], actions: [{ type: "forward", value: ["y@flaky.test:carol@backup.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "nullmx@example.com" }], actions: [{ type: "forward", value: ["n@nullmx.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "static@example.com" }], actions: [{ type: "forward", value: ["s@static.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "gone@example.com" }], actions: [{ type: "reject", value: ["This address has retired, write to hello@example.com"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "quiet@example.com" }], actions: [{ type: "drop" }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "pending@example.com" }], actions: [{ type: "forward", value: ["unverified@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "user@nosub.example" }], actions: [{ type: "forward", value: ["erin@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "user@example.com" }], actions: [{ type: "forward", value: ["erin@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "user+exact@example.com" }], actions: [{ type: "forward", value: ["bob@dest.test"] }] });
    await h.reload();
    // the server sends unverified@dest.test its verification link after the reload: let it
    // arrive now, so it cannot land in (and be counted by) a test below
    await h.sinks["dest.test"]!.waitForMessages(1, 15_000);
    assert.ok(h.sinks["dest.test"]!.messagesFor("unverified@dest.test").length === 1, "the verification message");
  });

  after(async () => {
    await h?.stop();
  });

  beforeEach(() => {
    for (const sink of Object.values(h.sinks)) sink.reset();
  });

  it("forwards a message to its one destination with 250 after the upstream accepted", async () => {
    const result = await send(h, "sender@origin.test", ["hello@example.com"], testMessage({ subject: "hi there", body: "Body stays exactly as sent.\r\n.leading dot line" }));
    assert.equal(result.rcpts[0]!.code, 250);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(result.data!.enhanced, "2.0.0");
    const [message] = h.sinks["dest.test"]!.messagesFor("alice@dest.test");
    assert.ok(message, "the destination received the message");
    assert.match(message.text, /\r\nReceived: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.mailroute\.test \(mailroute\) with ESMTP id /);
    assert.match(message.text, /^ARC-Seal: i=1; [^]*\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;/, "signed and sealed for the routing domain, on top");
    assert.ok(message.text.indexOf("\r\nFrom: alice@sender.test\r\n") > message.text.indexOf("\r\nAuthentication-Results: mx.mailroute.test;"), "our headers precede the original ones");
    assert.match(message.text, /Subject: hi there\r\n/);
    assert.ok(message.text.endsWith("Body stays exactly as sent.\r\n.leading dot line\r\n"), "body unchanged, dot-stuffing undone");
  });

  it("reuses one outbound connection for consecutive messages to the same host", async () => {
    await send(h, "sender@origin.test", ["hello@example.com"]);
    const before = h.sinks["dest.test"]!.connectionsSeen;
    for (let i = 0; i < 3; i++) assert.equal((await send(h, "sender@origin.test", ["hello@example.com"])).data!.code, 250);
    assert.equal(h.sinks["dest.test"]!.messages.length, 4);
    assert.equal(h.sinks["dest.test"]!.connectionsSeen - before, 0, "three messages, no new connection");
  });

  it("answers 550 5.1.10 for a destination domain with a null MX, without connecting anywhere", async () => {
    const result = await send(h, "sender@origin.test", ["nullmx@example.com"]);
    assert.equal(result.data!.code, 550, result.data!.line);
    assert.equal(result.data!.enhanced, "5.1.10");
    // our own finding, in our words: no server answered, and the private destination stays private
    assert.match(result.data!.text, /forwarding failed: the destination domain accepts no mail/);
    assert.doesNotMatch(result.data!.text, /nullmx\.test|destination server/);
  });

  it("delivers through a static --transport route without looking up MX records", async () => {
    const queriesBefore = h.dns.queries.length;
    const result = await send(h, "sender@origin.test", ["static@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(h.sinks["other.test"]!.messagesFor("s@static.test").length, 1);
    assert.ok(!h.dns.queries.slice(queriesBefore).some((query) => query.name.endsWith("static.test")), "no DNS lookup for static.test");
  });

  it("tries the IPv6 address of an MX before its IPv4 address", async () => {
    const v6 = await startSmtpSink({ host: "::1", port: h.sinkPort });
    try {
      h.dns.setRecords("dual.test", "MX", [{ exchange: "mx.dual.test", priority: 10 }]);
      h.dns.setRecords("mx.dual.test", "AAAA", ["::1"]);
      h.dns.setRecords("mx.dual.test", "A", ["127.0.0.4"]); // the other.test sink: wrong if used
      await h.config.addresses.create("d@dual.test", { verified: true });
      await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "dual@example.com" }], actions: [{ type: "forward", value: ["d@dual.test"] }] });
      await h.reload();
      const result = await send(h, "sender@origin.test", ["dual@example.com"]);
      assert.equal(result.data!.code, 250, result.data!.line);
      assert.equal(v6.messagesFor("d@dual.test").length, 1, "delivered over IPv6");
      assert.equal(h.sinks["other.test"]!.messagesFor("d@dual.test").length, 0);
    } finally {
      await v6.stop();
    }
  });

  it("fails over when the first destination drops the connection in the middle of the transaction", async () => {
    // A server that greets, answers EHLO, then hangs up at MAIL FROM: nodemailer reports this
    // only as an event, and the relay must still answer (here: the backup gets the message).
    const hangUp = createServer((socket) => {
      socket.write("220 rude.test ESMTP\r\n");
      socket.on("data", (chunk) => {
        const line = chunk.toString();
        if (/^(EHLO|HELO)/i.test(line)) socket.write("250 rude.test\r\n");
        else socket.destroy();
      });
    });
    await new Promise<void>((resolve) => hangUp.listen(h.sinkPort, "127.0.0.20", resolve));
    try {
      h.dns.setRecords("rude.test", "MX", [{ exchange: "mx.rude.test", priority: 10 }]);
      h.dns.setRecords("mx.rude.test", "A", ["127.0.0.20"]);
      await h.config.addresses.create("r@rude.test", { verified: true });
      await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "rude@example.com" }], actions: [{ type: "forward", value: ["r@rude.test:carol@backup.test"] }] });
      await h.reload();
      const result = await send(h, "sender@origin.test", ["rude@example.com"]);
      assert.equal(result.data!.code, 250, result.data!.line);
      assert.equal(h.sinks["backup.test"]!.messagesFor("carol@backup.test").length, 1);
    } finally {
      await new Promise((resolve) => hangUp.close(resolve));
    }
  });

  it("rewrites the envelope sender with SRS at our hostname", async () => {
    await send(h, "Sender@Origin.test", ["hello@example.com"]);
    const [message] = h.sinks["dest.test"]!.messages;
    assert.match(message!.from, /^SRS0=[^=]{8}=[A-Z2-7]{2}=origin\.test=Sender@mx\.mailroute\.test$/, "the local part keeps its case; the domain is in canonical ASCII form");
  });

  it("rewrites an internationalized sender domain to its ASCII form in the SRS address", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.command("EHLO client.test");
    assert.equal((await client.command("MAIL FROM:<user@bücher.example> SMTPUTF8")).code, 250);
    assert.equal((await client.command("RCPT TO:<hello@example.com>")).code, 250);
    const reply = await client.data(testMessage());
    await client.quit();
    assert.equal(reply.code, 250, reply.line);
    assert.match(h.sinks["dest.test"]!.messages[0]!.from, /^SRS0=[^=]{8}=[A-Z2-7]{2}=xn--bcher-kva\.example=user@mx\.mailroute\.test$/);
  });

  it("keeps a null sender null", async () => {
    const result = await send(h, "", ["hello@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(h.sinks["dest.test"]!.messages[0]!.from, "");
  });

  it("refuses an unknown recipient at RCPT with 550 5.1.1", async () => {
    const result = await send(h, "sender@origin.test", ["nobody@example.com"]);
    assert.equal(result.rcpts[0]!.code, 550);
    assert.equal(result.rcpts[0]!.enhanced, "5.1.1");
    assert.match(result.rcpts[0]!.text, /nobody@example\.com/);
  });

  it("rejects with the operator's reason", async () => {
    const result = await send(h, "sender@origin.test", ["gone@example.com"]);
    assert.equal(result.rcpts[0]!.code, 550);
    assert.equal(result.rcpts[0]!.enhanced, "5.7.1");
    assert.match(result.rcpts[0]!.text, /This address has retired, write to hello@example\.com/);
  });

  it("accepts and drops for a drop rule", async () => {
    const result = await send(h, "sender@origin.test", ["quiet@example.com"]);
    assert.equal(result.data!.code, 250);
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("refuses a rule whose destination is not verified", async () => {
    const result = await send(h, "sender@origin.test", ["pending@example.com"]);
    assert.equal(result.rcpts[0]!.code, 550);
    assert.match(result.rcpts[0]!.text, /not verified/);
  });

  it("routes user+tag to user when the zone supports sub-addressing, and an exact rule wins", async () => {
    await send(h, "sender@origin.test", ["user+news@example.com"]);
    assert.equal(h.sinks["dest.test"]!.messagesFor("erin@dest.test").length, 1);
    await send(h, "sender@origin.test", ["user+exact@example.com"]);
    assert.equal(h.sinks["dest.test"]!.messagesFor("bob@dest.test").length, 1);
  });

  it("refuses user+tag when the zone does not support sub-addressing", async () => {
    const result = await send(h, "sender@origin.test", ["user+news@nosub.example"]);
    assert.equal(result.rcpts[0]!.code, 550);
    assert.equal(result.rcpts[0]!.enhanced, "5.1.1");
  });

  it("delivers to every primary destination", async () => {
    const result = await send(h, "sender@origin.test", ["team@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(h.sinks["dest.test"]!.messagesFor("alice@dest.test").length, 1);
    assert.equal(h.sinks["other.test"]!.messagesFor("dave@other.test").length, 1);
  });

  it("fails over to the backup when the first destination answers 451", async () => {
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 451, text: "4.2.1 mailbox busy", address: "bob@dest.test" });
    const result = await send(h, "sender@origin.test", ["failover@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
    assert.equal(h.sinks["backup.test"]!.messagesFor("carol@backup.test").length, 1);
  });

  it("fails over to the backup when the first destination answers 550", async () => {
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 550, text: "5.1.1 no such user", address: "bob@dest.test" });
    const result = await send(h, "sender@origin.test", ["failover@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(h.sinks["backup.test"]!.messages.length, 1);
  });

  it("fails over to the backup when the first destination refuses connections", async () => {
    const result = await send(h, "sender@origin.test", ["refused@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.equal(h.sinks["backup.test"]!.messagesFor("carol@backup.test").length, 1);
  });

  it("fails over to the backup when the first destination drops the connection", async () => {
    h.sinks["flaky.test"]!.dropConnections(true);
    const result = await send(h, "sender@origin.test", ["dropped@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.ok(h.sinks["flaky.test"]!.connectionsSeen > 0, "the first destination was tried");
    assert.equal(h.sinks["flaky.test"]!.messages.length, 0);
    assert.equal(h.sinks["backup.test"]!.messagesFor("carol@backup.test").length, 1);
  });

  it("answers 451 with the upstream's text when a chain fails temporarily", async () => {
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 452, text: "4.2.2 mailbox full, try later", address: "bob@dest.test" });
    h.sinks["backup.test"]!.fail({ stage: "rcpt", code: 550, text: "5.1.1 unknown", address: "carol@backup.test" });
    const result = await send(h, "sender@origin.test", ["failover@example.com"]);
    assert.equal(result.data!.code, 451, result.data!.line);
    assert.equal(result.data!.enhanced, "4.2.2");
    assert.match(result.data!.text, /mx\.mailroute\.test: forwarding deferred by the destination server: mx\.dest\.test\[127\.0\.0\.\d+\]:\d+ said: 452 4\.2\.2 mailbox full, try later/);
    assert.doesNotMatch(result.data!.line, /bob@dest\.test/, "the private forwarding address is not revealed to the sender");
  });

  it("answers 550 with the upstream's text when every member fails permanently", async () => {
    h.sinks["dest.test"]!.fail({ stage: "data", code: 554, text: "5.7.1 message to <bob@dest.test> refused" });
    h.sinks["backup.test"]!.fail({ stage: "rcpt", code: 550, text: "5.1.1 unknown", address: "carol@backup.test" });
    const result = await send(h, "sender@origin.test", ["failover@example.com"]);
    assert.equal(result.data!.code, 550, result.data!.line);
    assert.equal(result.data!.enhanced, "5.7.1");
    assert.match(result.data!.text, /554 5\.7\.1 message to <\(destination\)> refused/, "the upstream's text, with the private address masked");
  });

  it("answers 250 when one primary delivered and the other failed permanently, and records the partial failure", async () => {
    h.sinks["other.test"]!.fail({ stage: "rcpt", code: 550, text: "5.1.1 gone", address: "dave@other.test" });
    const result = await send(h, "sender@origin.test", ["team@example.com"]);
    assert.equal(result.data!.code, 250, result.data!.line);
    assert.match(result.data!.text, /1 destination\(s\) refused it permanently/);
    // the events follow the sender's reply (store/pending-writes.ts)
    await h.mailroute.afterReply.settled();
    const events = await h.configStore.db.selectFrom("events").selectAll().where("rcpt_to", "=", "team@example.com").orderBy("id", "desc").execute();
    assert.equal(events[0]!.outcome, "forwarded");
    assert.equal(events[0]!.destinations, "alice@dest.test", "only the destination that accepted it");
    const chains = (JSON.parse(events[0]!.detail) as { chains: { status: string }[] }).chains.map((chain) => chain.status).sort();
    assert.deepEqual(chains, ["delivered", "permanent"], "the partial failure is in the detail");
  });

  it("does not deliver twice when the sender retries after a 451", async () => {
    h.sinks["other.test"]!.fail({ stage: "rcpt", code: 451, text: "4.3.0 try again", address: "dave@other.test", times: 1 });
    const message = testMessage({ subject: "retry me" });
    const first = await send(h, "sender@origin.test", ["team@example.com"], message);
    assert.equal(first.data!.code, 451, first.data!.line);
    assert.equal(h.sinks["dest.test"]!.messagesFor("alice@dest.test").length, 1);
    const second = await send(h, "sender@origin.test", ["team@example.com"], message);
    assert.equal(second.data!.code, 250, second.data!.line);
    assert.equal(h.sinks["dest.test"]!.messagesFor("alice@dest.test").length, 1, "alice got it exactly once");
    assert.equal(h.sinks["other.test"]!.messagesFor("dave@other.test").length, 1, "dave got it on the retry");
  });

  it("answers 452 4.5.3 to a recipient whose plan differs from the transaction's first", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    const env = await client.envelope("sender@origin.test", ["hello@example.com", "team@example.com", "HELLO@example.com"]);
    assert.equal(env.rcpts[0]!.code, 250);
    assert.equal(env.rcpts[1]!.code, 452);
    assert.equal(env.rcpts[1]!.enhanced, "4.5.3");
    assert.equal(env.rcpts[2]!.code, 250, "same plan, same transaction");
    const data = await client.data(testMessage());
    assert.equal(data.code, 250);
    await client.quit();
    assert.equal(h.sinks["dest.test"]!.messagesFor("alice@dest.test").length, 1, "one copy for two recipients with one plan");
  });

  it("returns a bounce sent to our SRS address to the original sender", async () => {
    const srs = new SrsRewriter({ secrets: [readSecret(h)], domain: "mx.mailroute.test" });
    const address = srs.forward("original@dest.test");
    const result = await send(h, "", [address]);
    assert.equal(result.rcpts[0]!.code, 250, result.rcpts[0]!.line);
    assert.equal(result.data!.code, 250);
    assert.equal(h.sinks["dest.test"]!.messagesFor("original@dest.test").length, 1);
  });

  it("refuses a forged SRS address at RCPT", async () => {
    const forged = new SrsRewriter({ secrets: ["not-our-secret"], domain: "mx.mailroute.test" }).forward("victim@dest.test");
    const result = await send(h, "", [forged]);
    assert.equal(result.rcpts[0]!.code, 550);
    assert.equal(result.rcpts[0]!.enhanced, "5.7.1");
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("refuses an expired SRS address at RCPT", async () => {
    const old = new SrsRewriter({ secrets: [readSecret(h)], domain: "mx.mailroute.test", now: () => Date.now() - 40 * 86_400_000 }).forward("victim@dest.test");
    const result = await send(h, "", [old]);
    assert.equal(result.rcpts[0]!.code, 550);
    assert.match(result.rcpts[0]!.text, /expired/);
  });
});

import { readFileSync } from "node:fs";
import { join } from "node:path";
function readSecret(h: Harness): string {
  return readFileSync(join(h.dataDir, "srs-secrets"), "utf8").split("\n")[0]!.trim();
}
