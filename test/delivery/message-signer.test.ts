import assert from "node:assert/strict";
import crypto, { generateKeyPairSync } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { syncBuiltinESMExports } from "node:module";
import { after, before, describe, it, mock } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { authenticate, dkimSign, type AuthenticateResult, type DNSResolver, type DKIMSignOptions } from "mailauth";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";
import { authResultsPayload, createMessageSigner, DKIM_SIGNED_FIELDS, type InboundArc, type MessageSigner } from "../../src/delivery/message-signer.ts";
import { receivedHeader } from "../../src/delivery/trace-header.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { AUTHOR_FIELDS } from "../support/author-message.ts";
import { eventLoopTurnsWhile } from "../support/event-loop-turns.ts";

// the memory test needs to see what is still alive, not what the collector has not reached yet
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

const SENDER_IP = "192.0.2.10";
const FORWARDER_IP = "192.0.2.20";
const SECOND_FORWARDER_IP = "192.0.2.30";

let dns: TestDnsServer;
let resolver: DNSResolver;
let keyDir: string;
let routeKeys: DkimKeyStore;
let relayKeys: DkimKeyStore;
let signer: MessageSigner;
let relaySigner: MessageSigner;
let senderKeyPem: string;

before(async () => {
  dns = await startDnsServer();
  const dnsResolver = new Resolver({ timeout: 2_000, tries: 1 });
  dnsResolver.setServers([dns.address]);
  // mailauth's resolver contract is dns.promises.resolve's: (name, rrtype) → answers
  resolver = (name, rrtype) => dnsResolver.resolve(name, rrtype) as Promise<string[][] | string[]>;

  // the original author's domain: DKIM key, SPF and a DMARC policy that rejects
  const sender = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "der" },
  });
  senderKeyPem = sender.privateKey;
  dns.setRecords("s1._domainkey.sender.example", "TXT", [`v=DKIM1; k=rsa; p=${sender.publicKey.toString("base64")}`]);
  dns.setRecords("sender.example", "TXT", [`v=spf1 ip4:${SENDER_IP} -all`]);
  dns.setRecords("_dmarc.sender.example", "TXT", ["v=DMARC1; p=reject"]);
  // the forwarders' own domains: SPF for the rewritten envelope sender
  dns.setRecords("route.example", "TXT", [`v=spf1 ip4:${FORWARDER_IP} -all`]);
  dns.setRecords("relay.example", "TXT", [`v=spf1 ip4:${SECOND_FORWARDER_IP} -all`]);

  keyDir = await mkdtemp(join(tmpdir(), "mailroute-signer-"));
  routeKeys = new DkimKeyStore({ dir: join(keyDir, "route"), ed25519: true });
  relayKeys = new DkimKeyStore({ dir: join(keyDir, "relay") });
  // what `mailroute doctor` tells the operator to publish
  for (const [store, domain] of [[routeKeys, "route.example"], [relayKeys, "relay.example"]] as const) {
    for (const record of await store.publicRecords(domain)) dns.setRecords(record.name, "TXT", [record.value]);
  }
  signer = createMessageSigner({ keys: routeKeys, hostname: "mx.route.example" });
  relaySigner = createMessageSigner({ keys: relayKeys, hostname: "mx.relay.example" });
});

after(async () => {
  await dns.stop();
  await rm(keyDir, { recursive: true, force: true });
});

function authorMessage(body = "Hello Bob,\r\n\r\nsee you  at noon.   \r\n\r\n\r\n"): Buffer {
  return Buffer.from(
    [...AUTHOR_FIELDS, "", body].join("\r\n"),
  );
}

/** The author's MTA signs it (d=sender.example). */
async function signedByAuthor(message: Buffer): Promise<Buffer> {
  const options = { signatureData: [{ signingDomain: "sender.example", selector: "s1", privateKey: senderKeyPem }] };
  const { signatures } = await dkimSign(message, options as DKIMSignOptions);
  assert.ok(signatures, "the author's DKIM signature");
  return Buffer.concat([Buffer.from(signatures), message]);
}

/** What an inbound MX runs on the message as received; its `arc` is what signAndSeal takes. */
function authenticateInbound(message: Buffer, hop: { ip: string; mailFrom: string; mta: string }): Promise<AuthenticateResult> {
  return authenticate(message, { ip: hop.ip, helo: `[${hop.ip}]`, sender: hop.mailFrom, mta: hop.mta, resolver, disableBimi: true });
}

const FIRST_HOP = { ip: SENDER_IP, mailFrom: "alice@sender.example", mta: "mx.route.example" };
const SECOND_HOP = { ip: FORWARDER_IP, mailFrom: "SRS0=HHHH=TT=sender.example=alice@route.example", mta: "mx.relay.example" };
const SINK_AFTER_ROUTE = { ip: FORWARDER_IP, mailFrom: "SRS0=HHHH=TT=sender.example=alice@route.example", mta: "mx.sink.example" };
const SINK_AFTER_RELAY = { ip: SECOND_FORWARDER_IP, mailFrom: "SRS0=HHHH=TT=sender.example=alice@relay.example", mta: "mx.sink.example" };

/** Our Received: header on top, as delivery sends the copy. */
function asForwarded(message: Buffer, hostname: string): Buffer {
  const trace = receivedHeader({
    clientHelo: "mail.sender.example",
    clientAddress: SENDER_IP,
    clientHostname: null,
    hostname,
    secure: true,
    smtpUtf8: false,
    queueId: "Q1",
    recipient: "bob@route.example",
    date: new Date("2026-11-23T11:00:05Z"),
  });
  return Buffer.concat([trace, message]);
}

function fieldNames(headers: Buffer): string[] {
  return headers
    .toString("binary")
    .split("\r\n")
    .filter((line) => line !== "" && !/^[ \t]/.test(line))
    .map((line) => line.slice(0, line.indexOf(":")));
}

function field(headers: Buffer, name: string): string {
  const match = new RegExp(`^${name}:.*(?:\\r\\n[ \\t].*)*`, "im").exec(headers.toString("binary"));
  assert.ok(match, `${name} in ${headers.toString()}`);
  return match[0];
}

function tagOf(fieldText: string, name: string): string | undefined {
  const value = fieldText.slice(fieldText.indexOf(":") + 1).replace(/\s+/g, "");
  return value.split(";").find((spec) => spec.startsWith(`${name}=`))?.slice(name.length + 1);
}

function dkimVerdicts(result: AuthenticateResult): string[] {
  return result.dkim.results.map((entry) => `${entry.signingDomain} ${entry.algo} ${entry.status.result}`).sort();
}

describe("signAndSeal", () => {
  it("DKIM-signs the copy for the routing domain, relaxed/relaxed sha256, and a verifier passes it", async () => {
    const copy = asForwarded(authorMessage(), "mx.route.example");

    const signed = await signer({ message: copy, routingDomain: "route.example", arc: null, authenticationResults: null });

    const dkim = field(signed.headers, "DKIM-Signature");
    assert.equal(tagOf(dkim, "d"), "route.example");
    assert.equal(tagOf(dkim, "s"), "mailroute");
    assert.equal(tagOf(dkim, "a"), "rsa-sha256");
    assert.equal(tagOf(dkim, "c"), "relaxed/relaxed");
    assert.deepEqual(tagOf(dkim, "h")?.toLowerCase().split(":").sort(), [
      "content-type", "date", "from", "message-id", "mime-version", "subject", "to",
    ]);
    const atSink = await authenticateInbound(Buffer.concat([signed.headers, copy]), SINK_AFTER_ROUTE);
    assert.ok(dkimVerdicts(atSink).includes("route.example rsa-sha256 pass"), dkimVerdicts(atSink).join(", "));
  });

  it("makes exactly the DKIM-Signature fields mailauth's dkimSign makes reading the whole message", async () => {
    const signTime = new Date("2026-11-23T11:00:06Z");
    const fixedSigner = createMessageSigner({ keys: routeKeys, hostname: "mx.route.example", now: () => signTime });
    const keys = await routeKeys.keysFor("route.example");
    const attachment = Buffer.alloc(300_000, 7).toString("base64").replace(/.{76}/g, "$&\r\n");
    const bodies = ["", "\r\n\r\n", "no final line break", "tabs\tand  runs   \r\n \t \r\n\r\n", "bare\nline\nfeeds\n", `--b\r\nContent-Type: application/pdf\r\n\r\n${attachment}\r\n--b--\r\n\r\n`];
    for (const body of bodies) {
      const message = authorMessage(body);
      const ours = await fixedSigner({ message, routingDomain: "route.example", arc: null, authenticationResults: null });
      const theirs = await dkimSign(message, {
        canonicalization: "relaxed/relaxed",
        headerList: [...DKIM_SIGNED_FIELDS],
        signTime,
        strict: true,
        signatureData: [keys.rsa, keys.ed25519!].map((key) => ({
          signingDomain: "route.example",
          selector: key.selector,
          privateKey: key.privateKeyPem,
          algorithm: key.algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256",
        })),
      } as DKIMSignOptions);
      assert.equal(ours.headers.toString("binary"), theirs.signatures, `body ${JSON.stringify(body.slice(0, 40))}`);
    }
  });

  it("adds no ARC set without an inbound ARC result, and says so", async () => {
    const signed = await signer({ message: asForwarded(authorMessage(), "mx.route.example"), routingDomain: "route.example", arc: null, authenticationResults: null });

    assert.deepEqual(fieldNames(signed.headers), ["DKIM-Signature", "DKIM-Signature"]);
    assert.equal(signed.arc, null);
    assert.deepEqual(signed.skipped, [{ part: "arc", reason: "no inbound ARC result to seal" }]);
  });

  it("seals a first hop as i=1 cv=none above its DKIM signatures, and the next hop finds the chain valid", async () => {
    const received = await signedByAuthor(authorMessage());
    // as the inbound MX would: authenticate what arrived, keep the result's `arc`
    const inbound = await authenticateInbound(received, FIRST_HOP);
    assert.equal(inbound.arc && inbound.arc.status.result, "none");
    const copy = asForwarded(received, "mx.route.example");

    const signed = await signer({ message: copy, routingDomain: "route.example", arc: inbound.arc, authenticationResults: null });

    assert.deepEqual(fieldNames(signed.headers), [
      "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results", "DKIM-Signature", "DKIM-Signature",
    ]);
    assert.deepEqual(signed.arc, { instance: 1, cv: "none" });
    assert.deepEqual(signed.skipped, []);
    const seal = field(signed.headers, "ARC-Seal");
    assert.equal(tagOf(seal, "i"), "1");
    assert.equal(tagOf(seal, "cv"), "none");
    assert.equal(tagOf(seal, "d"), "route.example");
    assert.equal(tagOf(seal, "a"), "rsa-sha256");
    // the message signature covers our DKIM-Signature fields as well as the author's
    assert.equal(tagOf(field(signed.headers, "ARC-Message-Signature"), "h")?.toLowerCase().split(":").filter((name) => name === "dkim-signature").length, 3);

    const atSink = await authenticateInbound(Buffer.concat([signed.headers, copy]), SINK_AFTER_ROUTE);
    assert.equal(atSink.arc && atSink.arc.status.result, "pass");
    assert.equal(atSink.arc && atSink.arc.i, 1);
    assert.deepEqual(dkimVerdicts(atSink), [
      "route.example ed25519-sha256 pass",
      "route.example rsa-sha256 pass",
      // nothing of the author's was touched, so the original signature, and DMARC with it, survive
      "sender.example rsa-sha256 pass",
    ]);
    assert.equal(atSink.dmarc && atSink.dmarc.status.result, "pass");
  });

  it("carries the inbound Authentication-Results into ARC-Authentication-Results", async () => {
    const received = await signedByAuthor(authorMessage());
    const inbound = await authenticateInbound(received, FIRST_HOP);
    const copy = asForwarded(received, "mx.route.example");
    const ours = "Authentication-Results: mx.route.example;\n spf=pass smtp.mailfrom=alice@sender.example;\n dkim=pass header.d=sender.example";

    const signed = await signer({ message: copy, routingDomain: "route.example", arc: inbound.arc, authenticationResults: ours });

    assert.equal(
      field(signed.headers, "ARC-Authentication-Results"),
      "ARC-Authentication-Results: i=1; mx.route.example;\r\n spf=pass smtp.mailfrom=alice@sender.example;\r\n dkim=pass header.d=sender.example",
    );
    const atSink = await authenticateInbound(Buffer.concat([signed.headers, copy]), SINK_AFTER_ROUTE);
    assert.equal(atSink.arc && atSink.arc.status.result, "pass");
    assert.equal(atSink.arc && atSink.arc.authenticationResults?.spf?.result, "pass");
  });

  it("gives a message that already carries an ARC set i=2 with cv=pass, and the chain of two validates", async () => {
    const received = await signedByAuthor(authorMessage());
    const firstCopy = asForwarded(received, "mx.route.example");
    const first = await signer({ message: firstCopy, routingDomain: "route.example", arc: (await authenticateInbound(received, FIRST_HOP)).arc, authenticationResults: null });
    const atRelay = Buffer.concat([first.headers, firstCopy]);
    const inbound = await authenticateInbound(atRelay, SECOND_HOP);
    assert.equal(inbound.arc && inbound.arc.status.result, "pass");
    const secondCopy = asForwarded(atRelay, "mx.relay.example");

    const second = await relaySigner({ message: secondCopy, routingDomain: "relay.example", arc: inbound.arc, authenticationResults: null });

    assert.deepEqual(second.arc, { instance: 2, cv: "pass" });
    const seal = field(second.headers, "ARC-Seal");
    assert.equal(tagOf(seal, "i"), "2");
    assert.equal(tagOf(seal, "cv"), "pass");
    assert.equal(tagOf(seal, "d"), "relay.example");
    assert.match(field(second.headers, "ARC-Authentication-Results"), /^ARC-Authentication-Results: i=2; mx\.relay\.example;[\s\S]*arc=pass \(i=1 /);

    const atSink = await authenticateInbound(Buffer.concat([second.headers, secondCopy]), SINK_AFTER_RELAY);
    assert.equal(atSink.arc && atSink.arc.status.result, "pass");
    assert.equal(atSink.arc && atSink.arc.i, 2);
    assert.ok(dkimVerdicts(atSink).includes("sender.example rsa-sha256 pass"));
    assert.ok(dkimVerdicts(atSink).includes("relay.example rsa-sha256 pass"));
  });

  it("seals a chain that broke on the way with cv=fail once, and never seals on top of cv=fail", async () => {
    const received = await signedByAuthor(authorMessage());
    const firstCopy = asForwarded(received, "mx.route.example");
    const first = await signer({ message: firstCopy, routingDomain: "route.example", arc: (await authenticateInbound(received, FIRST_HOP)).arc, authenticationResults: null });
    // a hop between us and the relay rewrote the body: every signature over it breaks
    const tampered = Buffer.concat([first.headers, firstCopy, Buffer.from("-- \r\nsent through a list footer\r\n")]);
    const inbound = await authenticateInbound(tampered, SECOND_HOP);
    assert.equal(inbound.arc && inbound.arc.status.result, "fail");

    const second = await relaySigner({ message: tampered, routingDomain: "relay.example", arc: inbound.arc, authenticationResults: null });
    assert.deepEqual(second.arc, { instance: 2, cv: "fail" });

    const afterFail = Buffer.concat([second.headers, tampered]);
    const third = await signer({ message: afterFail, routingDomain: "route.example", arc: (await authenticateInbound(afterFail, SINK_AFTER_RELAY)).arc, authenticationResults: null });
    assert.equal(third.arc, null);
    assert.deepEqual(third.skipped, [{ part: "arc", reason: "inbound ARC chain is fail and its newest seal already says cv=fail (RFC 8617 §5.1)" }]);
    assert.deepEqual(fieldNames(third.headers), ["DKIM-Signature", "DKIM-Signature"]);
  });

  it("refuses to vouch for an inbound ARC verdict about a different chain than the message's", async () => {
    const copy = asForwarded(authorMessage(), "mx.route.example");
    const elsewhere: InboundArc = { status: { result: "pass" }, i: 1, authResults: "mx.route.example; arc=pass" };

    const signed = await signer({ message: copy, routingDomain: "route.example", arc: elsewhere, authenticationResults: null });

    assert.equal(signed.arc, null);
    assert.deepEqual(signed.skipped, [{ part: "arc", reason: "inbound ARC result is for i=1 but the message's highest instance is i=0" }]);
  });

  it("makes the same bytes with its key operations on libuv's thread pool as inline (the SMTP thread signing itself)", async () => {
    const received = await signedByAuthor(authorMessage());
    const inbound = await authenticateInbound(received, FIRST_HOP);
    const copy = asForwarded(received, "mx.route.example");
    const now = () => new Date("2026-11-23T11:00:06Z");
    const inline = createMessageSigner({ keys: routeKeys, hostname: "mx.route.example", now });
    const pooled = createMessageSigner({ keys: routeKeys, hostname: "mx.route.example", now, keyOperations: "thread-pool" });
    const request = { message: copy, routingDomain: "route.example", arc: inbound.arc, authenticationResults: null };
    const [a, b] = await Promise.all([inline(request), pooled({ ...request })]);
    assert.deepEqual(fieldNames(b.headers), ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results", "DKIM-Signature", "DKIM-Signature"]);
    assert.equal(b.headers.toString("latin1"), a.headers.toString("latin1"));
  });

  it("runs a request's key operations where the request says, over the signer's own setting (signing-pool.ts decides per job, issue 11)", async () => {
    const copy = asForwarded(await signedByAuthor(authorMessage()), "mx.route.example");
    const inlineByDefault = createMessageSigner({ keys: routeKeys, hostname: "mx.route.example" });
    const pooledByDefault = createMessageSigner({ keys: routeKeys, hostname: "mx.route.example", keyOperations: "thread-pool" });
    const request = { message: copy, routingDomain: "route.example", arc: { status: { result: "none" as const } }, authenticationResults: null };
    // once per key operation on the pool, none inline
    const turnsWhile = async (sign: () => Promise<unknown>): Promise<number> => (await eventLoopTurnsWhile(sign)).turns;
    // keys loaded and cached first: only the key operations are counted
    await inlineByDefault(request);
    // four key operations one after the other (DKIM RSA and Ed25519, ARC-Message-Signature,
    // ARC-Seal): at least three turns on the pool (the first answer may beat the first turn)
    assert.ok((await turnsWhile(() => inlineByDefault({ ...request, keyOperations: "thread-pool" }))) >= 3, "the request asked for libuv's pool");
    assert.ok((await turnsWhile(() => pooledByDefault({ ...request, keyOperations: "inline" }))) <= 1, "the request asked for inline");
    assert.ok((await turnsWhile(() => pooledByDefault(request))) >= 3, "the signer's own setting, when the request says nothing");
  });

  it("reports a message it cannot sign (no From) instead of throwing", async () => {
    const noFrom = Buffer.from("To: bob@route.example\r\nSubject: anonymous\r\n\r\nhello\r\n");

    const signed = await signer({ message: noFrom, routingDomain: "route.example", arc: { status: { result: "none" }, i: 0 }, authenticationResults: null });

    assert.equal(signed.headers.length, 0);
    assert.deepEqual(signed.dkim, []);
    assert.deepEqual(signed.skipped, [
      { part: "dkim", reason: "mailroute: Can not sign a message that has no From header" },
      { part: "dkim", reason: "mailroute-ed: Can not sign a message that has no From header" },
      { part: "arc", reason: "no DKIM signature of ours to take the body hash from" },
    ]);
  });

  it("signs nothing, quickly, when the header block is absurdly large (no empty line in 25 MiB)", async () => {
    const folded = Buffer.from(" a continuation line of a header that never ends\r\n".repeat(1024));
    let pulled = 0;
    function* endless(): Generator<Buffer> {
      yield Buffer.from("From: alice@sender.example\r\nX-Long:\r\n");
      for (; pulled < 25 * 1024 * 1024; pulled += folded.length) yield folded;
    }

    const signed = await signer({ message: Readable.from(endless()), routingDomain: "route.example", arc: null, authenticationResults: null });

    assert.equal(signed.headers.length, 0);
    const reason = "header block larger than 524288 bytes: not signed";
    assert.deepEqual(signed.skipped, [{ part: "dkim", reason }, { part: "arc", reason }]);
    // it stopped reading soon after the limit instead of handing 25 MiB to the header parser
    assert.ok(pulled < 2 * 1024 * 1024, `read ${pulled} bytes`);
  });

  it("reports a header block over the limit in a message held whole (a Buffer) the same way, without throwing", async () => {
    const message = Buffer.from(`From: alice@sender.example\r\nX-Long: ${"z".repeat(600 * 1024)}\r\n\r\nbody\r\n`);
    const signed = await signer({ message, routingDomain: "route.example", arc: null, authenticationResults: null });
    assert.equal(signed.headers.length, 0);
    const reason = "header block larger than 524288 bytes: not signed";
    assert.deepEqual(signed.skipped, [{ part: "dkim", reason }, { part: "arc", reason }]);
  });

  it("signs with the keys the store parsed at load: no key is parsed again per message", async () => {
    const parse = mock.method(crypto, "createPrivateKey");
    // named imports of node:crypto see the mock too
    syncBuiltinESMExports();
    try {
      for (let index = 0; index < 3; index++) {
        const signed = await signer({ message: asForwarded(authorMessage(), "mx.route.example"), routingDomain: "route.example", arc: { status: { result: "none" }, i: 0 }, authenticationResults: null });
        assert.equal(signed.dkim.length, 2);
        assert.notEqual(signed.arc, null, "sealed as well");
      }
      assert.equal(parse.mock.callCount(), 0, "no key parsed while signing and sealing three messages");
    } finally {
      parse.mock.restore();
      syncBuiltinESMExports();
    }
  });

  it("fails when the message stream fails, rather than sign part of a message", async () => {
    const broken = new Readable({ read() {} });
    broken.push("From: alice@sender.example\r\nSubject: cut\r\n\r\nthe client went aw");
    setImmediate(() => broken.destroy(new Error("client connection reset")));

    await assert.rejects(signer({ message: broken, routingDomain: "route.example", arc: null, authenticationResults: null }), {
      message: "client connection reset",
    });
  });

  it("signs and seals a streamed 25 MiB message in one read without keeping it in memory", async () => {
    const total = 25 * 1024 * 1024;
    const header = authorMessage("");
    const line = Buffer.from("Lorem ipsum dolor sit amet,  consectetur adipiscing elit   \r\n");
    const stats = { bytes: 0, peakLive: 0 };
    const live = () => {
      collectGarbage();
      const usage = process.memoryUsage();
      return usage.arrayBuffers + usage.heapUsed;
    };
    function* body(measure: boolean): Generator<Buffer> {
      yield header;
      const baseline = measure ? live() : 0;
      for (let sent = 0, chunks = 0; sent < total; chunks++) {
        // a fresh buffer per chunk, as a socket or a spool file hands them out
        const chunk = Buffer.alloc(64 * 1024);
        for (let at = 0; at + line.length <= chunk.length; at += line.length) line.copy(chunk, at);
        sent += chunk.length;
        if (measure) {
          stats.bytes += chunk.length;
          if (chunks % 32 === 0) stats.peakLive = Math.max(stats.peakLive, live() - baseline);
        }
        yield chunk;
      }
    }
    // authenticate() on a message without ARC header fields says exactly this
    const noChain: InboundArc = { status: { result: "none" }, i: 0 };

    const signed = await signer({ message: Readable.from(body(true)), routingDomain: "route.example", arc: noChain, authenticationResults: null });

    assert.ok(stats.bytes >= total, "the whole message was read");
    // a kept copy would be ≥ 25 MiB; what stays alive is the header block and a chunk or two
    assert.ok(stats.peakLive < 8 * 1024 * 1024, `live memory grew by ${(stats.peakLive / 1048576).toFixed(1)} MiB`);
    assert.deepEqual(signed.arc, { instance: 1, cv: "none" });
    const atSink = await authenticate(Readable.from([signed.headers, ...body(false)]), {
      ip: FORWARDER_IP, sender: SINK_AFTER_ROUTE.mailFrom, mta: "mx.sink.example", resolver, disableBimi: true,
    });
    assert.deepEqual(dkimVerdicts(atSink), ["route.example ed25519-sha256 pass", "route.example rsa-sha256 pass"]);
    assert.equal(atSink.arc && atSink.arc.status.result, "pass");
  });
});

describe("ARC-Authentication-Results payload", () => {
  const none: InboundArc = { status: { result: "none" }, i: 0 };

  it("keeps a folded Authentication-Results value as one header field with CRLF folds", () => {
    assert.equal(
      authResultsPayload("Authentication-Results: mx.route.example;\n\tdkim=pass header.d=sender.example", none, "mx.route.example"),
      "mx.route.example;\r\n\tdkim=pass header.d=sender.example",
    );
  });

  it("cannot be used to inject a header field or end the header block", () => {
    const payload = authResultsPayload("mx.route.example; spf=pass\r\nX-Injected: yes\r\n\r\nbody", none, "mx.route.example");
    assert.equal(payload, "mx.route.example; spf=pass\r\n X-Injected: yes\r\n body");
  });

  it("adds the inbound arc= verdict when the results given do not record one", () => {
    const pass: InboundArc = { status: { result: "pass" }, i: 1, info: "arc=pass (i=1 spf=pass)" };
    assert.equal(authResultsPayload("mx.route.example; spf=pass", pass, "mx.route.example"), "mx.route.example; spf=pass;\r\n arc=pass (i=1 spf=pass)");
    assert.equal(authResultsPayload("mx.route.example; arc=pass", pass, "mx.route.example"), "mx.route.example; arc=pass");
  });

  it("falls back to mailauth's results, then to an empty result under our authserv-id", () => {
    assert.equal(authResultsPayload(null, { ...none, authResults: "mx.route.example;\r\n spf=none" }, "mx.route.example"), "mx.route.example;\r\n spf=none");
    assert.equal(authResultsPayload(null, none, "mx.route.example"), "mx.route.example; none");
  });
});
