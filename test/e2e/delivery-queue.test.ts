/**
 * Queue delivery mode end to end (issue 13): a real mailroute with a zone in `queue` mode, real
 * SMTP sinks behind real MX records on a loopback DNS server, retry timings shortened by flags.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { listQueued } from "../../src/store/repositories/delivery-queue-repository.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

async function send(h: Harness, from: string, to: string) {
  const { client } = await SmtpTestClient.connect(h.port);
  await client.envelope(from, [to]);
  const data = await client.data(testMessage({ from, to, subject: "queued hello" }));
  await client.quit();
  return data;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("queue delivery mode", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({
      destinations: ["dest.test", "backup.test", "senders.test"],
      settings: { "queue-min-backoff": "300", "queue-max-backoff": "600", "queue-poll": "100", "queue-max-age": "4000" },
    });
    await h.config.zones.create("example.com");
    await h.config.zones.create("relay.example");
    await h.config.zones.update("example.com", { deliveryMode: "queue" });
    for (const address of ["alice@dest.test", "bob@dest.test", "carol@backup.test"]) await h.config.addresses.create(address, { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "later@example.com" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "never@example.com" }], actions: [{ type: "forward", value: ["bob@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "chain@example.com" }], actions: [{ type: "forward", value: ["bob@dest.test:carol@backup.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "direct@relay.example" }], actions: [{ type: "forward", value: ["bob@dest.test"] }] });
    // per rule: the rule's own mode wins over its zone's, either way
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "kept@relay.example" }], actions: [{ type: "forward", value: ["bob@dest.test"] }], delivery_mode: "queue" });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "live@example.com" }], actions: [{ type: "forward", value: ["bob@dest.test"] }], delivery_mode: "relay" });
    await h.reload();
  });

  after(() => h.stop());

  it("answers 250 once a deferred message is stored, then retries until the destination accepts: one copy", { timeout: 60_000 }, async () => {
    const sink = h.sinks["dest.test"]!;
    sink.reset();
    sink.fail({ stage: "data", code: 451, text: "4.2.0 try again later", address: "alice@dest.test", times: 3 });
    const reply = await send(h, "sender@senders.test", "later@example.com");
    assert.equal(reply.code, 250, reply.line);
    assert.match(reply.text, /1 deferred destination\(s\) will be retried/);
    assert.equal(sink.messagesFor("alice@dest.test").length, 0, "not delivered yet: the destination deferred it");
    assert.equal((await listQueued(h.configStore.db, { account: null, limit: 10 })).length, 1, "stored before the 250");
    await sink.waitForMessages(1, 30_000);
    await until("the queue to empty", async () => (await listQueued(h.configStore.db, { account: null, limit: 10 })).length === 0);
    // more passes change nothing: the ledger and the removed entry keep it at one copy
    await h.mailroute.queue.tick();
    await h.mailroute.queue.tick();
    assert.equal(sink.messagesFor("alice@dest.test").length, 1);
    assert.match(sink.messagesFor("alice@dest.test")[0]!.text, /^DKIM-Signature: /m, sink.messagesFor("alice@dest.test")[0]!.text.slice(0, 600));
  });

  it("keeps each chain's failover order on retries", { timeout: 60_000 }, async () => {
    const primary = h.sinks["dest.test"]!;
    const backup = h.sinks["backup.test"]!;
    primary.reset();
    backup.reset();
    primary.fail({ stage: "data", code: 451, text: "4.2.0 busy", address: "bob@dest.test", times: 1 });
    backup.fail({ stage: "data", code: 451, text: "4.2.0 busy too", address: "carol@backup.test", times: 1 });
    const reply = await send(h, "sender@senders.test", "chain@example.com");
    assert.equal(reply.code, 250, reply.line);
    await primary.waitForMessages(1, 30_000);
    await until("the queue to empty", async () => (await listQueued(h.configStore.db, { account: null, limit: 10 })).length === 0);
    assert.equal(primary.messagesFor("bob@dest.test").length, 1, "the retry went to the chain's first member again");
    assert.equal(backup.messagesFor("carol@backup.test").length, 0);
  });

  it("gives up after the maximum age and sends the original sender a DSN naming the address it used, never the destination", { timeout: 60_000 }, async () => {
    const sink = h.sinks["dest.test"]!;
    const senders = h.sinks["senders.test"]!;
    sink.reset();
    senders.reset();
    sink.fail({ stage: "data", code: 451, text: "4.2.0 mailbox bob@dest.test is busy", address: "bob@dest.test" });
    const reply = await send(h, "sender@senders.test", "never@example.com");
    assert.equal(reply.code, 250, reply.line);
    const [dsn] = await senders.waitForMessages(1, 30_000);
    assert.equal(dsn!.from, "", "a DSN comes from the null sender");
    assert.deepEqual(dsn!.to, ["sender@senders.test"]);
    assert.match(dsn!.text, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(dsn!.text, /Final-Recipient: rfc822; never@example\.com/);
    assert.match(dsn!.text, /Action: failed\r\nStatus: 4\.4\.7/);
    assert.match(dsn!.text, /Content-Type: text\/rfc822-headers\r\n\r\n[^]*Subject: queued hello/, "the original header section is attached");
    assert.doesNotMatch(dsn!.text, /Hello from the test suite/, "never the body");
    assert.doesNotMatch(dsn!.text, /bob@dest\.test/i, "the private destination is never named");
    sink.reset();
    // the DSN itself went out through the queue (stored with the original's removal, one step)
    await until("the DSN's queue entry to go", async () => (await listQueued(h.configStore.db, { account: null, limit: 10 })).length === 0);
    assert.equal(senders.messages.length, 1, "one DSN");
  });

  it("lets a rule choose its own delivery mode over its zone's, and refuses an unknown mode naming the field", async () => {
    const sink = h.sinks["dest.test"]!;
    sink.reset();
    sink.fail({ stage: "data", code: 451, text: "4.2.0 later", address: "bob@dest.test", times: 2 });
    const kept = await send(h, "sender@senders.test", "kept@relay.example");
    assert.equal(kept.code, 250, `a queue rule in a relay zone is queued: ${kept.line}`);
    assert.match(kept.text, /will be retried/);
    const live = await send(h, "sender@senders.test", "live@example.com");
    assert.equal(live.code, 451, `a relay rule in a queue zone answers in session: ${live.line}`);
    await until("the queued copy to be delivered", () => sink.messagesFor("bob@dest.test").length === 1);
    await until("the queue to empty", async () => (await listQueued(h.configStore.db, { account: null, limit: 10 })).length === 0);
    await assert.rejects(
      h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "odd@example.com" }], actions: [{ type: "drop" }], delivery_mode: "sometimes" }),
      (error: Error & { field?: string }) => error.field === "delivery_mode",
    );
  });

  it("leaves a zone in relay mode as it was: the sender hears the deferral and nothing is queued", async () => {
    const sink = h.sinks["dest.test"]!;
    sink.reset();
    sink.fail({ stage: "data", code: 451, text: "4.2.0 later", address: "bob@dest.test", times: 1 });
    const reply = await send(h, "sender@senders.test", "direct@relay.example");
    assert.equal(reply.code, 451, reply.line);
    assert.equal((await listQueued(h.configStore.db, { account: null, limit: 10 })).length, 0);
  });
});
