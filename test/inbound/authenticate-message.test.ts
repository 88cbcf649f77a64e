import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, beforeEach, describe, it } from "node:test";
import { dkimSign } from "mailauth";
import { DEFAULT_AUTH_POLICY, decideAuthPolicy, type AuthPolicy } from "../../src/inbound/auth-policy.ts";
import { authenticateMessage, type InboundAuthResult } from "../../src/inbound/authenticate-message.ts";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import {
  generateDkimKey,
  largeMessageStream,
  sealAsForwarder,
  signingOptions,
  signMessage,
  testMessage,
  type SigningDomain,
} from "../support/mail-auth-fixtures.ts";

const HOSTNAME = "mx.mailroute.test";
// documentation ranges (RFC 5737): each sender domain's SPF lists its own
const ALIGNED_IP = "192.0.2.10";
const SPF_ONLY_IP = "192.0.2.20";
const THIRD_PARTY_IP = "203.0.113.5";
const UNLISTED_IP = "198.51.100.99";

let dns: TestDnsServer;
let aligned: SigningDomain;
let thirdParty: SigningDomain;
let forwarder: SigningDomain;

before(async () => {
  dns = await startDnsServer();
  aligned = { domain: "aligned.example", selector: "s2048", key: generateDkimKey() };
  thirdParty = { domain: "thirdparty.example", selector: "esp", key: generateDkimKey() };
  forwarder = { domain: "forwarder.example", selector: "arc", key: generateDkimKey() };
});
after(() => dns.stop());

// the sender domains of these tests, as their owners would publish them
beforeEach(() => {
  dns.clear();
  const txt = (name: string, value: string) => dns.setRecords(name, "TXT", [value]);
  txt("aligned.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("mail.aligned.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("_dmarc.aligned.example", "v=DMARC1; p=reject");
  txt("spfonly.example", `v=spf1 ip4:${SPF_ONLY_IP} -all`);
  txt("_dmarc.spfonly.example", "v=DMARC1; p=reject");
  txt("hardfail.example", `v=spf1 ip4:${SPF_ONLY_IP} -all`);
  txt("_dmarc.hardfail.example", "v=DMARC1; p=none");
  txt("softfail.example", `v=spf1 ip4:${SPF_ONLY_IP} ~all`);
  txt("_dmarc.softfail.example", "v=DMARC1; p=none");
  txt("thirdparty.example", `v=spf1 ip4:${THIRD_PARTY_IP} -all`);
  txt("victim.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("_dmarc.victim.example", "v=DMARC1; p=reject");
  txt("quarantine.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("_dmarc.quarantine.example", "v=DMARC1; p=quarantine");
  txt("monitor.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("_dmarc.monitor.example", "v=DMARC1; p=none; rua=mailto:reports@monitor.example");
  txt("nodmarc.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("slow.example", `v=spf1 ip4:${ALIGNED_IP} -all`);
  txt("_dmarc.slow.example", "v=DMARC1; p=reject");
  for (const signer of [aligned, thirdParty, forwarder]) txt(`${signer.selector}._domainkey.${signer.domain}`, signer.key.record);
});

interface Envelope {
  clientIp: string;
  mailFrom: string;
  helo?: string;
}

/** `timeoutMs` bounds the whole message, `queryTimeoutMs` each DNS query (c-ares). */
function authenticate(message: Buffer | Readable, envelope: Envelope, timeoutMs = 5_000, queryTimeoutMs = 1_000): Promise<InboundAuthResult> {
  return authenticateMessage({
    message,
    clientIp: envelope.clientIp,
    helo: envelope.helo ?? "client.sender.example",
    mailFrom: envelope.mailFrom,
    hostname: HOSTNAME,
    resolver: createDnsTxtResolver({ servers: [dns.address], timeoutMs: queryTimeoutMs, tries: 1 }),
    timeoutMs,
  });
}

/** A message From `from`, signed by thirdparty.example and sent from its IP with its envelope. */
async function viaThirdParty(from: string): Promise<InboundAuthResult> {
  const message = await signMessage(testMessage({ from }), thirdParty);
  return authenticate(message, { clientIp: THIRD_PARTY_IP, mailFrom: "bounces@thirdparty.example" });
}

function withPolicy(overrides: Partial<AuthPolicy>): AuthPolicy {
  return { ...DEFAULT_AUTH_POLICY, ...overrides };
}

describe("authenticating inbound mail against the sender's DNS", () => {
  it("passes SPF, DKIM and DMARC for mail signed by its own domain from a listed IP, and accepts it", async () => {
    const message = await signMessage(testMessage({ from: "Alice <alice@aligned.example>" }), aligned);

    const result = await authenticate(message, { clientIp: ALIGNED_IP, mailFrom: "bounce@aligned.example" });

    assert.deepEqual(
      { spf: result.spf, dkim: result.dkim, dmarc: result.dmarc, arc: result.arc, policy: result.dmarcPolicy, from: result.headerFrom },
      { spf: "pass", dkim: "pass", dmarc: "pass", arc: "none", policy: "reject", from: "aligned.example" },
    );
    assert.equal(result.spfAligned, true);
    assert.equal(result.dkimAligned, true);
    assert.deepEqual(result.raw.dkim, [{ domain: "aligned.example", selector: "s2048", result: "pass", aligned: true }]);
    assert.deepEqual(decideAuthPolicy(result, DEFAULT_AUTH_POLICY), { verdict: "accept" });
  });

  it("passes DMARC on SPF alone for unsigned mail from an IP in the domain's ip4:", async () => {
    const result = await authenticate(testMessage({ from: "bob@spfonly.example" }), { clientIp: SPF_ONLY_IP, mailFrom: "bob@spfonly.example" });

    assert.equal(result.spf, "pass");
    assert.equal(result.dkim, "none");
    assert.equal(result.dmarc, "pass");
    assert.equal(result.spfAligned, true);
    assert.equal(result.dkimAligned, false);
    assert.deepEqual(decideAuthPolicy(result, DEFAULT_AUTH_POLICY), { verdict: "accept" });
  });

  it("reports spf=fail for an IP outside a -all record and spf=softfail outside ~all", async () => {
    const hard = await authenticate(testMessage({ from: "c@hardfail.example" }), { clientIp: UNLISTED_IP, mailFrom: "c@hardfail.example" });
    const soft = await authenticate(testMessage({ from: "c@softfail.example" }), { clientIp: UNLISTED_IP, mailFrom: "c@softfail.example" });

    assert.equal(hard.spf, "fail");
    assert.equal(soft.spf, "softfail");
    for (const result of [hard, soft]) {
      assert.equal(result.dmarc, "fail");
      assert.equal(result.dmarcPolicy, "none");
      // p=none does not refuse, but Cloudflare's requirement does: nothing passed
      assert.equal(decideAuthPolicy(result, DEFAULT_AUTH_POLICY).verdict, "reject");
    }
  });

  it("checks the HELO identity when the sender is null (RFC 7208 §2.4)", async () => {
    const result = await authenticate(testMessage({ from: "mailer-daemon@aligned.example" }), {
      clientIp: ALIGNED_IP,
      mailFrom: "",
      helo: "mail.aligned.example",
    });

    assert.equal(result.spf, "pass");
    assert.equal(result.raw.spf.domain, "mail.aligned.example");
  });

  it("counts a valid signature from an unaligned domain as dkim=pass but not aligned", async () => {
    const result = await viaThirdParty("ceo@victim.example");

    assert.equal(result.dkim, "pass");
    assert.equal(result.spf, "pass");
    assert.equal(result.dkimAligned, false);
    assert.equal(result.spfAligned, false);
    assert.equal(result.dmarc, "fail");
    assert.deepEqual(result.raw.dkim.map((s) => [s.domain, s.result, s.aligned]), [["thirdparty.example", "pass", false]]);
  });
});

describe("enforcing the sender's policy on real results", () => {
  it("refuses a DMARC failure under p=reject with DMARC_REJECT naming the From domain", async () => {
    const decision = decideAuthPolicy(await viaThirdParty("ceo@victim.example"), DEFAULT_AUTH_POLICY);

    assert.equal(decision.verdict, "reject");
    assert.ok(decision.verdict === "reject");
    assert.equal(decision.reply, "DMARC_REJECT");
    assert.equal(decision.values.domain, "victim.example");
  });

  it("accepts and marks a DMARC failure under p=quarantine", async () => {
    const result = await viaThirdParty("news@quarantine.example");

    assert.equal(result.dmarcPolicy, "quarantine");
    assert.deepEqual(decideAuthPolicy(result, DEFAULT_AUTH_POLICY), { verdict: "accept-marked", reason: "dmarc-quarantine" });
  });

  it("accepts a DMARC failure under p=none without marking it", async () => {
    const result = await viaThirdParty("news@monitor.example");

    assert.equal(result.dmarc, "fail");
    assert.equal(result.dmarcPolicy, "none");
    assert.deepEqual(decideAuthPolicy(result, DEFAULT_AUTH_POLICY), { verdict: "accept" });
  });

  it("refuses mail that passes neither SPF nor DKIM with AUTH_REQUIRED", async () => {
    const result = await authenticate(testMessage({ from: "x@nodmarc.example" }), { clientIp: UNLISTED_IP, mailFrom: "x@nodmarc.example" });

    assert.equal(result.spf, "fail");
    assert.equal(result.dkim, "none");
    assert.equal(result.dmarc, "none");
    const decision = decideAuthPolicy(result, DEFAULT_AUTH_POLICY);
    assert.equal(decision.verdict === "reject" && decision.reply, "AUTH_REQUIRED");
  });

  it("relaxes each rule with its zone flag", async () => {
    const rejected = await viaThirdParty("ceo@victim.example");
    const quarantined = await viaThirdParty("news@quarantine.example");
    const unauthenticated = await authenticate(testMessage({ from: "x@nodmarc.example" }), { clientIp: UNLISTED_IP, mailFrom: "x@nodmarc.example" });

    assert.deepEqual(decideAuthPolicy(rejected, withPolicy({ enforceDmarc: false })), { verdict: "accept-marked", reason: "dmarc-reject-not-enforced" });
    assert.deepEqual(decideAuthPolicy(unauthenticated, withPolicy({ requireSpfOrDkim: false })), { verdict: "accept" });
    const strict = decideAuthPolicy(quarantined, withPolicy({ quarantineAction: "reject" }));
    assert.equal(strict.verdict === "reject" && strict.reply, "DMARC_REJECT");
  });
});

describe("DNS trouble during authentication", () => {
  it("turns an SPF lookup that outlasts the deadline into temperror and a tempfail, never a refusal", async () => {
    dns.delayFor("slow.example", 5_000);

    const result = await authenticate(testMessage({ from: "x@slow.example" }), { clientIp: UNLISTED_IP, mailFrom: "x@slow.example" }, 1_000);

    assert.equal(result.spf, "temperror");
    const decision = decideAuthPolicy(result, DEFAULT_AUTH_POLICY);
    assert.equal(decision.verdict, "tempfail");
    assert.ok(decision.verdict === "tempfail");
    assert.equal(decision.reply, "AUTH_TEMPFAIL");
  });

  it("defers rather than refuses a p=reject failure when a DKIM key query timed out", async () => {
    dns.delayFor(`${aligned.selector}._domainkey.${aligned.domain}`, 5_000);
    const message = await signMessage(testMessage({ from: "alice@aligned.example" }), aligned);

    // the query times out on its own, well inside the message's budget, so SPF still gets its answer
    const result = await authenticate(message, { clientIp: UNLISTED_IP, mailFrom: "alice@aligned.example" }, 5_000, 200);

    assert.equal(result.dkim, "temperror");
    assert.equal(result.spf, "fail");
    assert.equal(result.dmarc, "fail");
    assert.deepEqual(
      (({ verdict, reason }) => ({ verdict, reason }))(decideAuthPolicy(result, DEFAULT_AUTH_POLICY) as { verdict: string; reason: string }),
      { verdict: "tempfail", reason: "dmarc-unverifiable" },
    );
  });

  it("defers on a DMARC lookup SERVFAIL unless an identifier identical to the From domain passed", async () => {
    dns.failWith("_dmarc.victim.example", "SERVFAIL");
    dns.failWith("_dmarc.spfonly.example", "SERVFAIL");

    const forged = await viaThirdParty("ceo@victim.example");
    const own = await authenticate(testMessage({ from: "bob@spfonly.example" }), { clientIp: SPF_ONLY_IP, mailFrom: "bob@spfonly.example" });

    assert.equal(forged.dmarc, "temperror");
    assert.equal(forged.dmarcPolicy, null);
    assert.equal(decideAuthPolicy(forged, DEFAULT_AUTH_POLICY).verdict, "tempfail");
    assert.equal(own.dmarc, "temperror");
    assert.equal(own.spfAligned, true, "SPF passed for the From domain itself: aligned in any mode");
    assert.deepEqual(decideAuthPolicy(own, DEFAULT_AUTH_POLICY), { verdict: "accept" });
  });

  it("gives up at the deadline on a stream that stalls: every method temperror, the stream destroyed", async () => {
    const stalled = new Readable({ read() {} });
    stalled.push(testMessage({ from: "a@aligned.example" }).subarray(0, 40));

    const result = await authenticate(stalled, { clientIp: ALIGNED_IP, mailFrom: "a@aligned.example" }, 300);

    assert.equal(result.raw.timedOut, true);
    assert.deepEqual([result.spf, result.dkim, result.dmarc], ["temperror", "temperror", "temperror"]);
    assert.equal(result.arcForSealing, false, "an unknown chain is not sealed");
    assert.equal(stalled.destroyed, true);
    assert.equal(decideAuthPolicy(result, DEFAULT_AUTH_POLICY).verdict, "tempfail");
    assert.match(result.authenticationResults, /^mx\.mailroute\.test;\r\n spf=temperror/);
  });
});

describe("what authentication hands on", () => {
  it("writes an Authentication-Results value that parses (RFC 8601): our authserv-id, spf, dkim and dmarc with header.from", async () => {
    const message = await signMessage(testMessage({ from: "alice@aligned.example" }), aligned);
    const result = await authenticate(message, { clientIp: ALIGNED_IP, mailFrom: "bounce@aligned.example" });

    const value = result.authenticationResults;
    assert.ok(!/\r?\n(?![ \t])/.test(value), "every line break is a fold");
    const [authservId, ...resinfos] = value.replace(/\r\n[ \t]/g, " ").split(";").map((part) => part.trim());
    assert.equal(authservId, HOSTNAME);
    const methods = new Map(resinfos.map((info) => [info.split("=")[0], info]));
    assert.match(methods.get("spf") ?? "", /^spf=pass\b.*smtp\.mailfrom=bounce@aligned\.example/);
    assert.match(methods.get("dkim") ?? "", /^dkim=pass\b.*header\.i=@aligned\.example/);
    assert.match(methods.get("dmarc") ?? "", /^dmarc=pass\b.*header\.from=aligned\.example/);
  });

  it("reports dmarc=permerror when From names two domains, and marks the message", async () => {
    const result = await authenticate(testMessage({ from: "ceo@victim.example, friend@thirdparty.example" }), {
      clientIp: THIRD_PARTY_IP,
      mailFrom: "bounces@thirdparty.example",
    });

    assert.equal(result.dmarc, "permerror");
    assert.equal(result.headerFrom, null);
    assert.match(result.authenticationResults, /dmarc=permerror \(multiple author domains\)$/);
    assert.deepEqual(decideAuthPolicy(result, DEFAULT_AUTH_POLICY), { verdict: "accept-marked", reason: "dmarc-permerror" });
  });

  it("verifies an ARC set from an earlier forwarder and hands the result on for our own seal", async () => {
    const signed = await signMessage(testMessage({ from: "alice@aligned.example" }), aligned);
    const sealed = await sealAsForwarder(signed, forwarder, "forwarder.example; spf=pass smtp.mailfrom=aligned.example; dkim=pass header.i=@aligned.example");

    const result = await authenticate(sealed, { clientIp: UNLISTED_IP, mailFrom: "srs@forwarder.example" });

    assert.equal(result.arc, "pass");
    assert.equal(result.raw.arc.instance, 1);
    const arc = result.arcForSealing as { status: { result: string }; authResults: string };
    assert.equal(arc.status.result, "pass");
    assert.equal(arc.authResults, result.authenticationResults);
  });

  it("reads at most 1 MiB of header section, still checks SPF, and drains the rest of the stream", async () => {
    const filler = Array.from({ length: 20_000 }, (_, i) => `X-Filler-${i}: ${"z".repeat(60)}`);
    const signed = await signMessage(testMessage({ from: "alice@aligned.example", headers: filler }), aligned);
    const stream = Readable.from([signed], { objectMode: false });

    const result = await authenticate(stream, { clientIp: ALIGNED_IP, mailFrom: "bounce@aligned.example" });

    assert.equal(result.raw.headerTruncated, true);
    assert.equal(result.spf, "pass");
    assert.notEqual(result.dkim, "pass", "a signature over headers we did not read cannot verify");
    assert.equal(stream.readableEnded, true);
  });

  it("authenticates a 5 MiB message handed over as a stream", async () => {
    const header = testMessage({ from: "alice@aligned.example", body: "" });
    const bodyBytes = 5 * 1024 * 1024;
    const { signatures } = await dkimSign(largeMessageStream(header, bodyBytes), signingOptions(aligned));
    const message = largeMessageStream(Buffer.concat([Buffer.from(signatures), header]), bodyBytes);

    const result = await authenticate(message, { clientIp: ALIGNED_IP, mailFrom: "bounce@aligned.example" }, 30_000);

    assert.equal(result.dkim, "pass");
    assert.equal(result.dmarc, "pass");
    assert.equal(result.raw.headerTruncated, false);
    assert.equal(message.readableEnded, true, "the whole stream was read");
  });
});
