/**
 * Mail to our SRS return addresses (issue 8, item 2): only bounces (the null sender), checked
 * like any other mail, with the hash compared in full; postsrsd's looser rules only on request.
 * Clients are untrusted here (--trusted-networks none), as they are on the internet.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { SrsRewriter } from "../../src/delivery/srs-rewriter.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage, type Reply } from "../support/smtp-test-client.ts";

function ourSrs(h: Harness, options: { postsrsdCompat?: boolean; hashLength?: number } = {}): SrsRewriter {
  const secret = readFileSync(join(h.dataDir, "srs-secrets"), "utf8").split("\n")[0]!.trim();
  return new SrsRewriter({ secrets: [secret], domain: "mx.mailroute.test", ...options });
}

async function sendTo(h: Harness, helo: string, from: string, rcpt: string): Promise<{ rcpt: Reply; data: Reply | null }> {
  const { client } = await SmtpTestClient.connect(h.port);
  await client.command(`EHLO ${helo}`);
  assert.equal((await client.command(`MAIL FROM:<${from}>`)).code, 250);
  const reply = await client.command(`RCPT TO:<${rcpt}>`);
  const data = reply.code === 250 ? await client.data(testMessage({ from: `MAILER-DAEMON@${helo}`, subject: "Undelivered Mail Returned to Sender" })) : null;
  await client.quit();
  return { rcpt: reply, data };
}

function flipCase(text: string): string {
  return [...text].map((char) => (char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase())).join("");
}

function setUpDns(h: Harness): void {
  // bounce.test's own HELO name passes SPF from loopback; nowhere.test has no SPF at all
  h.dns.setRecords("bounce.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
  h.dns.setRecords("good.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
}

describe("SRS return addresses (strict, the default)", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "trusted-networks": "none" } });
    setUpDns(h);
  });
  after(async () => h?.stop());
  beforeEach(() => h.sinks["dest.test"]!.reset());

  it("returns an authenticated bounce (null sender) to the original sender", async () => {
    const result = await sendTo(h, "bounce.test", "", ourSrs(h).forward("original@dest.test"));
    assert.equal(result.rcpt.code, 250, result.rcpt.line);
    assert.equal(result.data?.code, 250, result.data?.line);
    assert.equal(h.sinks["dest.test"]!.messagesFor("original@dest.test").length, 1);
  });

  it("refuses a valid SRS address from a non-null sender with 550 5.7.1, and a forged one with the same answer", async () => {
    const valid = ourSrs(h).forward("victim@dest.test");
    const forged = new SrsRewriter({ secrets: ["not-ours"], domain: "mx.mailroute.test" }).forward("victim@dest.test");
    for (const address of [valid, forged]) {
      const result = await sendTo(h, "good.test", "spammer@good.test", address);
      assert.equal(result.rcpt.code, 550, result.rcpt.line);
      assert.equal(result.rcpt.enhanced, "5.7.1");
      assert.match(result.rcpt.text, /accept only bounces \(null sender\)/, "no word on whether the hash was right");
    }
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("refuses an unauthenticated bounce to a valid SRS address with 550 5.7.26 (no waiver for SRS)", async () => {
    const result = await sendTo(h, "nowhere.test", "", ourSrs(h).forward("victim@dest.test"));
    assert.equal(result.rcpt.code, 250, result.rcpt.line);
    assert.equal(result.data?.code, 550, result.data?.line);
    assert.equal(result.data?.enhanced, "5.7.26");
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("refuses a case-flipped hash, a lower-cased address and postsrsd's 4-character hash", async () => {
    const srs = ourSrs(h);
    const address = srs.forward("victim@dest.test");
    const [, hash, rest] = /^SRS0=([^=]+)=(.*)$/.exec(address)!;
    const attempts = [`SRS0=${flipCase(hash!)}=${rest}`, address.toLowerCase(), ourSrs(h, { hashLength: 4 }).forward("victim@dest.test")];
    for (const attempt of attempts) {
      const result = await sendTo(h, "bounce.test", "", attempt);
      assert.equal(result.rcpt.code, 550, `${attempt}: ${result.rcpt.line}`);
    }
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });
});

describe("SRS return addresses with --srs-postsrsd-compat", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "trusted-networks": "none", "srs-postsrsd-compat": "true" } });
    setUpDns(h);
  });
  after(async () => h?.stop());
  beforeEach(() => h.sinks["dest.test"]!.reset());

  it("accepts an authenticated sender other than the null sender, and a lower-cased postsrsd address", async () => {
    const fromSender = await sendTo(h, "good.test", "someone@good.test", ourSrs(h).forward("original@dest.test"));
    assert.equal(fromSender.data?.code, 250, fromSender.data?.line ?? fromSender.rcpt.line);
    const postsrsdMade = ourSrs(h, { hashLength: 4 }).forward("original@dest.test").toLowerCase();
    const lowered = await sendTo(h, "bounce.test", "", postsrsdMade);
    assert.equal(lowered.data?.code, 250, lowered.data?.line ?? lowered.rcpt.line);
    assert.equal(h.sinks["dest.test"]!.messagesFor("original@dest.test").length, 2);
  });

  it("still refuses an unauthenticated one", async () => {
    const result = await sendTo(h, "nowhere.test", "", ourSrs(h).forward("original@dest.test"));
    assert.equal(result.data?.code, 550, result.data?.line ?? result.rcpt.line);
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });
});
