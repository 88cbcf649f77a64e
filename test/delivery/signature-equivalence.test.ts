/**
 * Our signer (message-signer.ts and the modules under it) against mailauth 7.1, which signed
 * before issue 11 (mailauth-reference-signer.ts drives it as message-signer.ts used to): for a
 * corpus of messages, keys, inbound ARC verdicts and existing ARC chains — valid ones mailauth
 * sealed itself, and broken ones — every header line and every `skipped` reason must be the
 * same, byte for byte. And mailauth's verifier, over the loopback DNS server, must pass what we
 * sign.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { authenticate, sealMessage, type AuthenticateResult, type DNSResolver } from "mailauth";
import { DkimKeyStore, type DkimKey, type DomainKeys } from "../../src/delivery/dkim-keys.ts";
import { createMessageSigner, type InboundArc, type MessageSignerOptions, type SignedHeaders } from "../../src/delivery/message-signer.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { createMailauthSigner } from "./mailauth-reference-signer.ts";
import { AUTHOR_FIELDS, RECEIVED_FIELD } from "../support/author-message.ts";

const SIGN_TIME = new Date("2026-11-23T11:00:06Z");
const CRLF = "\r\n";

let dns: TestDnsServer;
let resolver: DNSResolver;
let keyDir: string;
let hopKeyPem: string;
/** Named key sets, each a `keys` option for both signers. */
const keySets = new Map<string, MessageSignerOptions["keys"]>();

function key(algorithm: "rsa" | "ed25519", selector: string, domain: string, bits = 2048): DkimKey {
  const pair = algorithm === "rsa" ? generateKeyPairSync("rsa", { modulusLength: bits }) : generateKeyPairSync("ed25519");
  return keyOf(algorithm, selector, domain, pair.privateKey, pair.publicKey);
}

function keyOf(algorithm: "rsa" | "ed25519", selector: string, domain: string, privateKey: KeyObject, publicKey: KeyObject): DkimKey {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const p = (publicKey.asymmetricKeyType === "ed25519" ? spki.subarray(spki.length - 32) : spki).toString("base64");
  return {
    algorithm,
    selector,
    privateKey,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    dnsName: `${selector}._domainkey.${domain}`,
    dnsValue: `v=DKIM1; k=${publicKey.asymmetricKeyType}; p=${p}`,
  };
}

function fixedKeys(keys: DomainKeys): MessageSignerOptions["keys"] {
  for (const entry of [keys.rsa, keys.ed25519]) if (entry) dns.setRecords(entry.dnsName, "TXT", [entry.dnsValue]);
  return { keysFor: async () => keys };
}

before(async () => {
  dns = await startDnsServer();
  const dnsResolver = new Resolver({ timeout: 2_000, tries: 1 });
  dnsResolver.setServers([dns.address]);
  resolver = (name, rrtype) => dnsResolver.resolve(name, rrtype) as Promise<string[][] | string[]>;
  keyDir = await mkdtemp(join(tmpdir(), "mailroute-equivalence-"));

  // the key store's own: RSA-2048 and Ed25519
  const store = new DkimKeyStore({ dir: keyDir, ed25519: true });
  for (const record of await store.publicRecords("route.example")) dns.setRecords(record.name, "TXT", [record.value]);
  keySets.set("store rsa-2048 + ed25519", store);
  // RSA-1024 under a long domain and selector: the folds of every line fall elsewhere
  const longDomain = "a-rather-long-subdomain-label-to-move-the-folds.route.example";
  keySets.set("rsa-1024 + ed25519, long d= and s=", fixedKeys({ domain: longDomain, rsa: key("rsa", "selector-2026-november", longDomain, 1024), ed25519: key("ed25519", "ed-selector-2026-november", longDomain) }));
  // a d= longer than a line: the fold has to come after the word
  const longerThanALine = `${"l".repeat(60)}.${"m".repeat(60)}.route.example`;
  keySets.set("rsa-1024, d= longer than a line", fixedKeys({ domain: longerThanALine, rsa: key("rsa", "s", longerThanALine, 1024) }));
  keySets.set("rsa-2048 only", fixedKeys({ domain: "relay.example", rsa: key("rsa", "mr", "relay.example") }));

  // the previous hops' sealing key (mailauth seals the chains the corpus starts from)
  const hop = key("rsa", "hop", "hop.example");
  hopKeyPem = hop.privateKeyPem;
  dns.setRecords(hop.dnsName, "TXT", [hop.dnsValue]);
});

after(async () => {
  await dns.stop();
  await rm(keyDir, { recursive: true, force: true });
});

function message(lines: string[], body = `Hello Bob,${CRLF}${CRLF}see you  at noon.   ${CRLF}`): Buffer {
  return Buffer.from(lines.join(CRLF) + CRLF + CRLF + body, "latin1");
}

const AUTHOR = [RECEIVED_FIELD, ...AUTHOR_FIELDS];
const utf8 = (text: string) => Buffer.from(text, "utf8").toString("latin1");

/** Header-level variety: what canonicalization, field selection and h= folding are about. */
function plainCorpus(): [string, Buffer][] {
  return [
    ["plain", message(AUTHOR)],
    ["many fields, repeated To and Received, names in odd case", message([
      "Received: from a.example by b.example; Mon, 23 Nov 2026 10:59:00 +0000",
      ...AUTHOR,
      "To: carol@route.example", "TO: dave@route.example", "cc: erin@route.example", "Reply-To: list@lists.example",
      "List-Id: Lunch <lunch.lists.example>", "List-Unsubscribe: <mailto:unsub@lists.example>", "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
      "Content-Disposition: inline", "Resent-From: bob@route.example", "Resent-Date: Mon, 23 Nov 2026 11:00:03 +0000",
      "In-Reply-To: <a@sender.example>", `References: ${Array.from({ length: 12 }, (_, i) => `<ref-${i}@sender.example>`).join(" ")}`,
      "Message-Id: <second-id@sender.example>", "X-Not-Signed: at all", "Delivered-To: bob@route.example", "BIMI-Selector: v=BIMI1; s=brand",
      "subject : spaced name", "Sender: owner@lists.example",
    ])],
    ["folded fields with tabs and trailing whitespace", message([
      "From: Alice\t <alice@sender.example>  ",
      "Subject: a subject\r\n\tfolded with a tab  \t\r\n   and spaces \t",
      "To: bob@route.example,\r\n carol@route.example\t",
      "Date:\tMon, 23 Nov 2026 11:00:00 +0000",
      "Content-Type: multipart/mixed;\r\n\tboundary=\"b1\"  ",
      "Subject\r\n : a name folded before its colon",
    ])],
    ["8-bit and UTF-8 values", message([
      utf8("From: Jörg Müller <joerg@sender.example>"),
      utf8("Subject: Grüße aus Köln — 日本語の件名 🍱"),
      "To: caf\xe9@route.example",
      utf8("Cc: \u00a0nbsp\u00a0 <c@route.example>"),
      "Date: Mon, 23 Nov 2026 11:00:00 +0000",
    ])],
    ["no body, no empty line", Buffer.from("From: alice@sender.example\r\nSubject: no body")],
    ["no body after the empty line", Buffer.from("From: alice@sender.example\r\nSubject: empty body\r\n\r\n")],
    ["bare LF line ends", Buffer.from("From: alice@sender.example\nTo: bob@route.example\nSubject: bare\n LF fold\n\nbody\nline\n")],
    ["lone CR, a line without a colon, odd first line", Buffer.from(" continuation first\r\nFrom: alice@sender.example\r\nSubject: lone\rCR\r\nno colon on this line\r\nTo: bob@route.example\r\n\r\nbody\r\n")],
    ["a lone CR ending the last field", Buffer.from("From: alice@sender.example\r\nSubject: cr at the end\r\r\n\r\nbody\r\n")],
    ["forty To fields: a long h=", message([...AUTHOR, ...Array.from({ length: 40 }, (_, i) => `To: r${i}@route.example`)])],
    ["no From", message(["To: bob@route.example", "Subject: anonymous"])],
    ["two From fields", message([...AUTHOR, "From: mallory@evil.example"])],
    ["starts with an empty line", Buffer.from("\r\nFrom: alice@sender.example\r\n\r\nbody\r\n")],
  ];
}

async function sealedBy(input: Buffer, cv: "none" | "pass" | "fail", authResults = "mx.hop.example; spf=pass smtp.mailfrom=sender.example"): Promise<Buffer> {
  const options = { signingDomain: "hop.example", selector: "hop", privateKey: hopKeyPem, cv, authResults, signTime: new Date("2026-11-23T10:59:30Z") };
  const seal = await sealMessage(input, options as Parameters<typeof sealMessage>[1]);
  assert.ok(seal.length > 0, `mailauth sealed (cv=${cv})`);
  return Buffer.concat([seal, input]);
}

/** Rewrites header lines: each ARC line (without its folds) through `edit`; null drops it. */
function editArc(input: Buffer, edit: (field: string) => string | null): Buffer {
  const text = input.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  const fields = text.slice(0, end).split(/\r\n(?![ \t])/);
  const edited = fields.flatMap((field) => {
    if (!/^arc-/i.test(field)) return [field];
    const result = edit(field);
    return result === null ? [] : [result];
  });
  return Buffer.from(edited.join(CRLF) + text.slice(end), "latin1");
}

async function arcCorpus(): Promise<[string, Buffer][]> {
  const base = message(AUTHOR);
  const one = await sealedBy(base, "none");
  const two = await sealedBy(one, "pass");
  const three = await sealedBy(two, "pass");
  const failed = await sealedBy(one, "fail");
  const isSet = (field: string, instance: number) => new RegExp(`^ARC-[A-Za-z-]+:\\s*i=${instance};`).test(field);
  return [
    ["chain i=1 (cv=none)", one],
    ["chain i=2 (cv=pass)", two],
    ["chain i=3", three],
    ["chain whose newest seal says cv=fail", failed],
    ["unreadable: a set without its message signature", editArc(two, (field) => (/^ARC-Message-Signature/.test(field) && isSet(field, 1) ? null : field))],
    ["unreadable: a seal twice", editArc(two, (field) => (/^ARC-Seal/.test(field) && isSet(field, 2) ? `${field}\r\n${field}` : field))],
    ["unreadable: i=1 says cv=pass", editArc(two, (field) => (isSet(field, 1) ? field.replace("cv=none", "cv=pass") : field))],
    ["unreadable: a gap (i=1 and i=3)", editArc(three, (field) => (isSet(field, 2) ? null : field))],
    ["unreadable: a seal with h=", editArc(one, (field) => (/^ARC-Seal/.test(field) ? field.replace("cv=none;", "cv=none; h=from;") : field))],
    ["unreadable: rsa-sha1", editArc(two, (field) => (/^ARC-Seal/.test(field) && isSet(field, 2) ? field.replace("a=rsa-sha256", "a=rsa-sha1") : field))],
    ["unreadable: a message signature over ARC-Seal", editArc(one, (field) => (/^ARC-Message-Signature/.test(field) ? field.replace("h=", "h=ARC-Seal:") : field))],
    ["unreadable: a lone set at i=50", Buffer.concat([Buffer.from("ARC-Seal: i=50; a=rsa-sha256; cv=pass; d=x.example; s=s; b=AAAA\r\n"), base])],
    ["unreadable: a lone cv=fail seal at i=7, fields in lower case", Buffer.concat([Buffer.from("arc-seal: i=7; a=rsa-sha256; cv=FAIL; d=x.example; s=s; b=AAAA\r\narc-authentication-results: i=9 (nine); mx.example; arc=fail\r\n"), base])],
    ["odd instances: i=0, i=1.5, a key-only i", Buffer.concat([Buffer.from("ARC-Seal: i=0; cv=none\r\nARC-Message-Signature: i=1.5; a=rsa-sha256\r\nARC-Seal: x; I=3; i\r\n"), one])],
    ["instances in RFC 8601 dress: comments and quotes", Buffer.concat([Buffer.from('ARC-Authentication-Results: (a comment; with i=9) i = 2 ; mx.example; x="i=4;"\r\n'), one])],
    ["a comment nested in a comment", Buffer.concat([Buffer.from("ARC-Authentication-Results: (outer (inner) i=7;) i=2; mx.example\r\n"), base])],
    ["an i without a value after i=3, taken for the authserv-id", Buffer.concat([Buffer.from("ARC-Authentication-Results: i=3; i\r\n"), base])],
    ["a seal's cv= replaced by a cv without a value", Buffer.concat([Buffer.from("ARC-Seal: i=2; cv=fail; junk; cv\r\n"), base])],
    ["a seal whose first part has no \"=\"", Buffer.concat([Buffer.from("ARC-Seal: cv; i=4; cv=fail\r\n"), base])],
    ["an escaped quote in a quoted string", Buffer.concat([Buffer.from('ARC-Authentication-Results: i=2; x="q\\";i=5;"\r\n'), base])],
    ["an escaped name outside quotes", Buffer.concat([Buffer.from("ARC-Authentication-Results: i=2; \\i=6\r\n"), base])],
    ["ARC fields without instances", Buffer.concat([Buffer.from("ARC-Seal: cv=pass; a=rsa-sha256\r\nARC-Authentication-Results: mx.example; i; spf=pass\r\n"), base])],
  ];
}

/** Inbound verdicts to seal with: each kind mailauth's arc() gives, and some it does not. */
const VERDICTS: [string, InboundArc | null][] = [
  ["no verdict", null],
  ["none i=0", { status: { result: "none" }, i: 0 }],
  ["none, no i", { status: { result: "none" } }],
  ["pass i=1", { status: { result: "pass" }, i: 1, info: "arc=pass (i=1 spf=pass)" }],
  ["pass i=2", { status: { result: "pass" }, i: 2, authResults: "mx.route.example;\r\n arc=pass (i=2)" }],
  ["pass i=3", { status: { result: "pass" }, i: 3 }],
  ["pass, no i", { status: { result: "pass" } }],
  ["fail, may seal", { status: { result: "fail", shouldSeal: true }, info: "arc=fail (i=2 seal signature validation failed)" }],
  ["fail, may seal, i=2", { status: { result: "fail", shouldSeal: true }, i: 2 }],
  ["fail, newest said cv=fail", { status: { result: "fail", shouldSeal: false } }],
  ["neutral", { status: { result: "neutral" } as InboundArc["status"] }],
];

const AUTH_RESULTS = [
  null,
  "Authentication-Results: mx.route.example;\n spf=pass smtp.mailfrom=alice@sender.example;\n\tdkim=pass header.d=sender.example  ",
  "mx.route.example; dmarc=pass header.from=jörg.example (Grüße, 日本)",
];

function comparable(signed: SignedHeaders): object {
  return { ...signed, headers: signed.headers.toString("latin1") };
}

async function assertSameAsMailauth(keys: MessageSignerOptions["keys"], input: Buffer, arc: InboundArc | null, authenticationResults: string | null, label: string, now = SIGN_TIME): Promise<SignedHeaders> {
  const options = { keys, hostname: "mx.route.example", now: () => now };
  const request = { message: input, routingDomain: "route.example", arc, authenticationResults };
  const ours = await createMessageSigner(options)(request);
  const theirs = await createMailauthSigner(options)(request);
  assert.deepEqual(comparable(ours), comparable(theirs), label);
  return ours;
}

describe("our signer and mailauth's, side by side", () => {
  it("write the same DKIM-Signature fields and skip the same messages, for every key set and message", async () => {
    let signatures = 0;
    for (const [keyName, keys] of keySets) {
      for (const [name, input] of plainCorpus()) {
        const ours = await assertSameAsMailauth(keys, input, null, null, `${keyName}: ${name}`);
        signatures += ours.dkim.length;
      }
    }
    // most of the corpus is signable: the comparison is not between two empty results
    assert.ok(signatures >= 25, `${signatures} signatures compared`);
  });

  it("add the same ARC set, or refuse it for the same reason, for every chain and inbound verdict", async () => {
    const corpus = [...plainCorpus().slice(0, 4), ...(await arcCorpus())];
    const outcomes = new Map<string, number>();
    for (const [keyName, keys] of keySets) {
      for (const [name, input] of corpus) {
        for (const [index, [verdictName, verdict]] of VERDICTS.entries()) {
          const ours = await assertSameAsMailauth(keys, input, verdict, AUTH_RESULTS[index % AUTH_RESULTS.length]!, `${keyName}: ${name}, ${verdictName}`);
          const outcome = ours.arc ? `sealed cv=${ours.arc.cv}` : (ours.skipped.find((entry) => entry.part === "arc")?.reason.replace(/\d+/g, "N") ?? "?");
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }
    }
    // every branch of sealing was taken at least once
    for (const expected of [
      "sealed cv=none", "sealed cv=pass", "sealed cv=fail",
      "cv=pass needs a valid ARC chain to seal", "Can not add ARC set i=N, the chain already has N sets",
      "cv=none is not valid for ARC instance N", "cv=pass is not valid for ARC instance N",
      "The newest ARC-Seal (i=N) has cv=fail, the chain can not be sealed again",
      "inbound ARC result is for i=N but the message's highest instance is i=N",
    ]) {
      assert.ok(outcomes.has(expected), `no case ended "${expected}": ${[...outcomes.keys()].join(" | ")}`);
    }
  });

  it("write non-ASCII d= and s= as the same A-labels", async () => {
    const cases: [string, string][] = [
      ["bücher.example", "sélecteur"],
      ["ÉCOLE.Straße.example", "Ünïcödé-2026"],
      ["例え\u3002テスト", "sel"],
    ];
    for (const [domain, selector] of cases) {
      const keys: DomainKeys = { domain, rsa: key("rsa", selector, domain, 1024), ed25519: key("ed25519", `${selector}-ed`, domain) };
      const ours = await assertSameAsMailauth({ keysFor: async () => keys }, message(AUTHOR), { status: { result: "none" }, i: 0 }, null, `${domain} ${selector}`);
      assert.equal(ours.dkim.length, 2, `${domain}: signed`);
      assert.ok(ours.headers.toString("latin1").includes("d=xn--"), `${domain}: an A-label`);
    }
  });

  it("refuse keys, names and times no verifier accepts in the same words", async () => {
    const ed = generateKeyPairSync("ed25519");
    const cases: [string, DomainKeys, Date?][] = [
      ["a non-ASCII name with an @ in it", { domain: "ä@b.example", rsa: key("rsa", "s", "route.example", 1024) }],
      ["RSA-512", { domain: "route.example", rsa: key("rsa", "short", "route.example", 512), ed25519: key("ed25519", "ed", "route.example") }],
      ["a selector with an underscore", { domain: "route.example", rsa: key("rsa", "bad_selector", "route.example", 1024) }],
      ["a one-label domain", { domain: "localhost", rsa: key("rsa", "s", "localhost", 1024) }],
      ["an Ed25519 key where the RSA key goes", { domain: "route.example", rsa: keyOf("rsa", "mixed", "route.example", ed.privateKey, ed.publicKey), ed25519: key("ed25519", "ed", "route.example") }],
      ["a signing time before 1970", { domain: "route.example", rsa: key("rsa", "s", "route.example", 1024) }, new Date(-5_000)],
    ];
    for (const [name, keys, now] of cases) {
      const ours = await assertSameAsMailauth({ keysFor: async () => keys }, message(AUTHOR), { status: { result: "none" }, i: 0 }, null, name, now);
      assert.ok(ours.skipped.some((entry) => entry.part === "dkim"), `${name}: something was refused`);
    }
  });
});

/** What an MX running mailauth concludes about a message. */
function authenticateAt(input: Buffer): Promise<AuthenticateResult> {
  return authenticate(input, { ip: "192.0.2.20", helo: "mx.route.example", sender: "bounces@route.example", mta: "mx.next.example", resolver, disableBimi: true });
}

describe("mailauth's verifier on what we sign", () => {
  it("passes our DKIM signatures (RSA-1024, RSA-2048, Ed25519) on every signable message of the corpus", async () => {
    for (const [keyName, keys] of keySets) {
      const domain = (await keys.keysFor("route.example")).domain;
      for (const [name, input] of plainCorpus()) {
        const signed = await createMessageSigner({ keys, hostname: "mx.route.example" })({ message: input, routingDomain: "route.example", arc: null, authenticationResults: null });
        if (signed.dkim.length === 0) continue;
        const result = await authenticateAt(Buffer.concat([signed.headers, input]));
        const ours = result.dkim.results.filter((entry) => entry.signingDomain === domain);
        assert.deepEqual(ours.map((entry) => `${entry.algo} ${entry.status.result}`).sort(), signed.dkim.map((entry) => `${entry.algorithm} pass`).sort(), `${keyName}: ${name}`);
      }
    }
  });

  it("validates the chain we extend at i=1, 2 and 3 (arc=pass), each set the same as mailauth's", async () => {
    const keys = keySets.get("store rsa-2048 + ed25519")!;
    let input = message(AUTHOR);
    for (const instance of [1, 2, 3]) {
      const inbound = await authenticateAt(input);
      assert.equal(inbound.arc && inbound.arc.status.result, instance === 1 ? "none" : "pass", `before hop ${instance}`);
      const ours = await assertSameAsMailauth(keys, input, inbound.arc || null, inbound.headers ?? null, `hop ${instance}`, new Date(SIGN_TIME.getTime() + instance * 1000));
      assert.deepEqual(ours.arc, { instance, cv: instance === 1 ? "none" : "pass" });
      input = Buffer.concat([ours.headers, input]);
    }
    const atSink = await authenticateAt(input);
    assert.equal(atSink.arc && atSink.arc.status.result, "pass");
    assert.equal(atSink.arc && atSink.arc.i, 3);
    assert.deepEqual(atSink.dkim.results.filter((entry) => entry.signingDomain === "route.example").map((entry) => entry.status.result), ["pass", "pass", "pass", "pass", "pass", "pass"]);
  });

  it("validates a cv=fail seal we add on a chain that broke, and sees the chain as failed", async () => {
    const keys = keySets.get("rsa-2048 only")!;
    const two = await sealedBy(await sealedBy(message(AUTHOR), "none"), "pass");
    // a list footer after the last hop: the newest message signature no longer verifies
    const broken = Buffer.concat([two, Buffer.from("-- \r\nfooter\r\n")]);
    const inbound = await authenticateAt(broken);
    assert.equal(inbound.arc && inbound.arc.status.result, "fail");
    const ours = await assertSameAsMailauth(keys, broken, inbound.arc || null, null, "after a broken chain");
    assert.deepEqual(ours.arc, { instance: 3, cv: "fail" });
    const atSink = await authenticateAt(Buffer.concat([ours.headers, broken]));
    assert.equal(atSink.arc && atSink.arc.status.result, "fail");
    assert.ok(atSink.dkim.results.some((entry) => entry.signingDomain === "relay.example" && entry.status.result === "pass"));
  });
});
