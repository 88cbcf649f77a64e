import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

async function send(h: Harness, from: string, to: string) {
  const { client } = await SmtpTestClient.connect(h.port);
  const env = await client.envelope(from, [to]);
  const data = env.rcpts.some((r) => r.code === 250) ? await client.data(testMessage({ from, to })) : null;
  await client.quit();
  return { ...env, data };
}

describe("per-zone signing opt-out (migration 0006_zone_signing)", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], transports: { "own.test": "dest.test" } });
    await h.config.zones.create("signed.example");
    await h.config.zones.create("unsigned.example");
    await h.config.addresses.create("alice@dest.test", { verified: true });
    await h.config.addresses.create("bob@own.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@signed.example" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@unsigned.example" }], actions: [{ type: "forward", value: ["bob@own.test"] }] });
    await h.config.zones.update("unsigned.example", { signOutbound: false });
    await h.reload();
  });

  after(async () => {
    await h?.stop();
  });

  it("a new zone signs: the routing table carries signOutbound true by default", () => {
    assert.equal(h.mailroute.routing.table.zones.get("signed.example")?.policy.signOutbound, true);
    assert.equal(h.mailroute.routing.table.zones.get("unsigned.example")?.policy.signOutbound, false);
  });

  it("forwards mail of a zone that opted out without DKIM-Signature or ARC set, everything else as usual", async () => {
    const result = await send(h, "sender@origin.test", "hello@unsigned.example");
    assert.equal(result.data?.code, 250, result.data?.line);
    const [message] = h.sinks["dest.test"]!.messagesFor("bob@own.test");
    assert.ok(message, "the destination received the message");
    assert.doesNotMatch(message.text, /^(DKIM-Signature|ARC-Seal|ARC-Message-Signature):/im);
    // still authenticated and traced: only signing is skipped
    assert.match(message.text, /^Authentication-Results: mx\.mailroute\.test;/m);
    assert.match(message.text, /^Received: from /m);
  });

  it("keeps signing and sealing mail of every other zone", async () => {
    const result = await send(h, "sender@origin.test", "hello@signed.example");
    assert.equal(result.data?.code, 250, result.data?.line);
    const [message] = h.sinks["dest.test"]!.messagesFor("alice@dest.test");
    assert.ok(message, "the destination received the message");
    assert.match(message.text, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=signed\.example;/m);
  });
});

describe("--signing-threads 0: signatures made on the SMTP thread", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "signing-threads": "0" } });
    await h.config.zones.create("signed.example");
    await h.config.addresses.create("alice@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@signed.example" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    await h.reload();
  });

  after(async () => {
    await h?.stop();
  });

  it("forwards signed and sealed, as with signing threads", async () => {
    const result = await send(h, "sender@origin.test", "hello@signed.example");
    assert.equal(result.data?.code, 250, result.data?.line);
    const [message] = h.sinks["dest.test"]!.messagesFor("alice@dest.test");
    assert.ok(message, "the destination received the message");
    assert.match(message.text, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=signed\.example;/m);
    assert.match(message.text, /^ARC-Seal: i=1; /m);
  });
});
