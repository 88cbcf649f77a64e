/**
 * Outbound TLS and MTA-STS (RFC 8461) end to end through the delivery stack the service runs
 * (createDeliveryStack + relayMessage): real DNS on loopback publishing MX, A and _mta-sts TXT
 * records, policies served over loopback HTTPS with a test-CA certificate, and real SMTP
 * servers as MX hosts, each on its own loopback address sharing one port (--outbound-port).
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { after, before, beforeEach, describe, it } from "node:test";
import { SMTPServer } from "smtp-server";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { createDeliveryStack, type DeliveryStack } from "../../src/delivery/delivery-stack.ts";
import { createPolicyFetcher } from "../../src/delivery/mta-sts-fetch.ts";
import { relayMessage, type DeliveryLedger, type RelayOutcome } from "../../src/delivery/relay-message.ts";
import { SmtpClientPool } from "../../src/delivery/smtp-client-pool.ts";
import { verifyingContext } from "../../src/delivery/certificate-trust.ts";
import { TlsPolicyError } from "../../src/delivery/outbound-tls.ts";
import { replyForRelay } from "../../src/mail/dispatch-reply.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { startPolicyHost, type PolicyHost } from "../support/mta-sts-policy-host.ts";
import { createTestCa, type TestCa, type TestLeaf } from "../support/test-ca.ts";

interface Mx {
  readonly host: string;
  readonly port: number;
  /** One entry per message accepted: was the session under TLS? */
  readonly received: { to: string[]; secure: boolean }[];
  /** TCP connections accepted (a skipped MX must see none). */
  readonly connections: number;
  reset(): void;
  stop(): Promise<void>;
}

/** An MX host: STARTTLS with `leaf` when given, no STARTTLS at all when null. */
async function startMx(host: string, port: number, leaf: TestLeaf | null): Promise<Mx> {
  const received: { to: string[]; secure: boolean }[] = [];
  let connections = 0;
  const server = new SMTPServer({
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    ...(leaf ? { key: leaf.key, cert: leaf.cert, disabledCommands: ["AUTH"] } : { disabledCommands: ["AUTH", "STARTTLS"], hideSTARTTLS: true }),
    onData(stream, session, callback) {
      stream.resume();
      stream.on("end", () => {
        received.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), secure: session.secure });
        callback(null, "2.0.0 Ok: stored by test MX");
      });
    },
  });
  server.on("error", () => undefined);
  server.server.prependListener("connection", () => connections++);
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  return {
    host,
    port: (server.server.address() as AddressInfo).port,
    received,
    get connections() {
      return connections;
    },
    reset() {
      received.length = 0;
      connections = 0;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** MX hosts on 127.0.0.2, .3, … all on one port, since delivery uses one --outbound-port. */
async function startMxHosts(leaves: readonly (TestLeaf | null)[]): Promise<Mx[]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const hosts: Mx[] = [];
    try {
      for (const [index, leaf] of leaves.entries()) hosts.push(await startMx(`127.0.0.${index + 2}`, hosts[0]?.port ?? 0, leaf));
      return hosts;
    } catch (error) {
      await Promise.all(hosts.map((mx) => mx.stop()));
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    }
  }
  throw new Error("could not find a port free on every MX address");
}

function policyText(mode: "enforce" | "testing" | "none", mx: readonly string[]): string {
  return ["version: STSv1", `mode: ${mode}`, ...mx.map((entry) => `mx: ${entry}`), "max_age: 86400", ""].join("\r\n");
}

// Destination domains, one per behaviour; each has a policy host name in the test CA certificate.
const DOMAINS = ["secure.test", "plain.test", "wrongname.test", "unlisted.test", "onlyunlisted.test", "opportunistic.test", "static.test"] as const;

const memoryLedger = (): DeliveryLedger => {
  const accepted = new Map<string, Set<string>>();
  return {
    view: async (fingerprint) => ({ accepted: new Set(accepted.get(fingerprint) ?? []), intents: new Map() }),
    // one attempt per message at a time here: the intent protocol has its own tests
    claim: async () => true,
    recordAccepted: async (fingerprint, destination) => void accepted.set(fingerprint, new Set([...(accepted.get(fingerprint) ?? []), destination])),
    settle: async () => undefined,
  };
};

describe("outbound TLS and MTA-STS through the delivery stack", () => {
  let ca: TestCa;
  let dns: TestDnsServer;
  let policyHost: PolicyHost;
  let mx: Record<"secure" | "plain" | "wrongname" | "unlisted1" | "unlisted2" | "onlyunlisted" | "opportunistic" | "static", Mx>;
  let stack: DeliveryStack;
  let messageCount = 0;

  /** Publishes `_mta-sts.<domain>` and serves its policy from the loopback policy host. */
  function publishPolicy(domain: string, mode: "enforce" | "testing" | "none", listed: readonly string[]): void {
    dns.setRecords(`_mta-sts.${domain}`, "TXT", [`v=STSv1; id=${mode}${listed.length}`]);
    policyHost.answers.set(`mta-sts.${domain}`, { body: policyText(mode, listed) });
  }

  function publishMx(domain: string, exchanges: readonly { name: string; host: Mx; priority?: number }[]): void {
    dns.setRecords(domain, "MX", exchanges.map(({ name, priority }, index) => ({ exchange: name, priority: priority ?? 10 * (index + 1) })));
    for (const { name, host } of exchanges) dns.setRecords(name, "A", [host.host]);
  }

  async function relay(destination: string): Promise<RelayOutcome> {
    messageCount++;
    const body = `From: sender@origin.test\r\nTo: ${destination}\r\nSubject: TLS test ${messageCount}\r\nMessage-ID: <tls-${messageCount}@origin.test>\r\n\r\nhello\r\n`;
    return relayMessage(
      { chains: [[destination]], mailFrom: "sender@origin.test", fingerprint: `fp-${messageCount}`, size: body.length, message: () => Readable.from([body]) },
      { send: stack.send, ledger: memoryLedger(), deadlineMs: 20_000 },
    );
  }

  /** What the sending MTA hears for this outcome (the inbound server's reply after DATA). */
  function heard(outcome: RelayOutcome): string {
    return replyForRelay(outcome, "Q1", "mx.mailroute.test").line;
  }

  before(async () => {
    ca = createTestCa();
    dns = await startDnsServer();
    policyHost = await startPolicyHost(ca.issue("policy-host", DOMAINS.map((domain) => `mta-sts.${domain}`)));
    const [secure, plain, wrongname, unlisted1, unlisted2, onlyunlisted, opportunistic, statik] = await startMxHosts([
      ca.issue("mx-secure", ["mx.secure.test"]),
      null,
      ca.issue("mx-wrongname", ["mx.elsewhere.test"]),
      ca.issue("mx-unlisted1", ["mx1.unlisted.test"]),
      ca.issue("mx-unlisted2", ["mx2.unlisted.test"]),
      ca.issue("mx-onlyunlisted", ["mx.onlyunlisted.test"]),
      ca.selfSigned("mx-opportunistic", ["mx.opportunistic.test"]),
      null,
    ]);
    mx = { secure: secure!, plain: plain!, wrongname: wrongname!, unlisted1: unlisted1!, unlisted2: unlisted2!, onlyunlisted: onlyunlisted!, opportunistic: opportunistic!, static: statik! };

    stack = createDeliveryStack({
      hostname: "mx.mailroute.test",
      outboundPort: mx.secure.port,
      transport: `static.test=${mx.static.host}:${mx.static.port}`,
      dnsServers: [dns.address],
      // the MX certificates' CA reaches the verifying client only through --ca-file
      caFile: ca.certFile,
      client: { connectionTimeoutMs: 3_000, greetingTimeoutMs: 3_000, socketTimeoutMs: 5_000 },
      // the production fetcher, with every policy host reached on the loopback policy host
      mtaStsFetch: createPolicyFetcher({ ca: ca.cert, timeoutMs: 3_000, connect: new Map(DOMAINS.map((domain) => [`mta-sts.${domain}`, `127.0.0.1:${policyHost.port}`])) }),
      logger: silentLogger,
    });
  });

  after(async () => {
    await stack?.close();
    await Promise.all([...Object.values(mx ?? {}).map((host) => host.stop()), dns?.stop(), policyHost?.stop()]);
    ca?.remove();
  });

  beforeEach(() => {
    for (const host of Object.values(mx)) host.reset();
  });

  it("delivers over verified TLS to a listed MX whose certificate comes from the --ca-file CA", async () => {
    publishMx("secure.test", [{ name: "mx.secure.test", host: mx.secure }]);
    publishPolicy("secure.test", "enforce", ["mx.secure.test"]);

    const outcome = await relay("alice@secure.test");
    assert.equal(outcome.status, "delivered", JSON.stringify(outcome));
    assert.match(outcome.chains[0]!.attempts[0]!.reply, /^250 /);
    assert.deepEqual(mx.secure.received, [{ to: ["alice@secure.test"], secure: true }]);
    assert.equal(policyHost.requests.get("mta-sts.secure.test"), 1);

    // the verified connection is pooled and serves the next message to the same MX
    assert.equal((await relay("bob@secure.test")).status, "delivered");
    assert.deepEqual(mx.secure.received.map((entry) => entry.secure), [true, true]);
    assert.equal(mx.secure.connections, 1);
    assert.equal(policyHost.requests.get("mta-sts.secure.test"), 1, "the policy is cached");
  });

  it("fails temporarily with 451 4.7.4 and delivers nothing when the enforce MX offers no STARTTLS", async () => {
    publishMx("plain.test", [{ name: "mx.plain.test", host: mx.plain }]);
    publishPolicy("plain.test", "enforce", ["mx.plain.test"]);

    const outcome = await relay("carol@plain.test");
    assert.equal(outcome.status, "temporary");
    const attempt = outcome.chains[0]!.attempts[0]!;
    assert.equal(attempt.code, 451);
    assert.match(attempt.reply, /^4\.7\.4 MX mx\.plain\.test does not offer STARTTLS/);
    assert.match(heard(outcome), /^451 4\.7\.4 /);
    assert.deepEqual(mx.plain.received, []);
  });

  it("fails temporarily with 451 4.7.5 when the enforce MX's certificate names another host", async () => {
    publishMx("wrongname.test", [{ name: "mx.wrongname.test", host: mx.wrongname }]);
    publishPolicy("wrongname.test", "enforce", ["mx.wrongname.test"]);

    const outcome = await relay("dave@wrongname.test");
    assert.equal(outcome.status, "temporary");
    const attempt = outcome.chains[0]!.attempts[0]!;
    assert.equal(attempt.code, 451);
    assert.match(attempt.reply, /^4\.7\.5 TLS to MX mx\.wrongname\.test failed/);
    assert.match(heard(outcome), /^451 4\.7\.5 /);
    assert.deepEqual(mx.wrongname.received, []);
  });

  it("skips an MX the enforce policy does not list, without connecting, and delivers to the listed one", async () => {
    // the unlisted MX is preferred and has a perfectly valid certificate: it is still not used
    publishMx("unlisted.test", [
      { name: "mx1.unlisted.test", host: mx.unlisted1, priority: 10 },
      { name: "mx2.unlisted.test", host: mx.unlisted2, priority: 20 },
    ]);
    publishPolicy("unlisted.test", "enforce", ["mx2.unlisted.test"]);

    const outcome = await relay("erin@unlisted.test");
    assert.equal(outcome.status, "delivered", JSON.stringify(outcome));
    assert.equal(mx.unlisted1.connections, 0);
    assert.deepEqual(mx.unlisted2.received, [{ to: ["erin@unlisted.test"], secure: true }]);
  });

  it("fails temporarily with 451 4.7.4 when the enforce policy lists none of the MX hosts", async () => {
    publishMx("onlyunlisted.test", [{ name: "mx.onlyunlisted.test", host: mx.onlyunlisted }]);
    publishPolicy("onlyunlisted.test", "enforce", ["mx.somewhere-else.test"]);

    const outcome = await relay("frank@onlyunlisted.test");
    assert.equal(outcome.status, "temporary");
    assert.match(outcome.chains[0]!.attempts[0]!.reply, /^4\.7\.4 MX mx\.onlyunlisted\.test is not listed/);
    assert.match(heard(outcome), /^451 4\.7\.4 /);
    assert.equal(mx.onlyunlisted.connections, 0);
  });

  it("without a policy still uses STARTTLS opportunistically, even with a self-signed certificate", async () => {
    publishMx("opportunistic.test", [{ name: "mx.opportunistic.test", host: mx.opportunistic }]);

    const outcome = await relay("grace@opportunistic.test");
    assert.equal(outcome.status, "delivered", JSON.stringify(outcome));
    assert.deepEqual(mx.opportunistic.received, [{ to: ["grace@opportunistic.test"], secure: true }]);
  });

  it("under a testing policy delivers even when the MX offers no STARTTLS (RFC 8461 §5)", async () => {
    publishMx("plain.test", [{ name: "mx.plain.test", host: mx.plain }]);
    publishPolicy("plain.test", "testing", ["mx.plain.test"]);
    const outcome = await createFreshStackRelay("heidi@plain.test");
    assert.equal(outcome.status, "delivered", JSON.stringify(outcome));
    assert.deepEqual(mx.plain.received, [{ to: ["heidi@plain.test"], secure: false }]);
  });

  it("never applies MTA-STS to a --transport domain: no policy lookup, plain text accepted", async () => {
    // static.test publishes an enforce policy that would forbid its transport host outright
    publishPolicy("static.test", "enforce", ["mx.static.test"]);
    const queriesBefore = dns.queries.length;

    const outcome = await relay("ivan@static.test");
    assert.equal(outcome.status, "delivered", JSON.stringify(outcome));
    assert.deepEqual(mx.static.received, [{ to: ["ivan@static.test"], secure: false }]);
    assert.deepEqual(dns.queries.slice(queriesBefore).filter((query) => query.name.includes("static.test")), []);
    assert.equal(policyHost.requests.get("mta-sts.static.test"), undefined);
  });

  /** A relay through a stack of its own, so no policy cached by earlier tests applies. */
  async function createFreshStackRelay(destination: string): Promise<RelayOutcome> {
    const fresh = createDeliveryStack({
      hostname: "mx.mailroute.test",
      outboundPort: mx.secure.port,
      transport: "",
      dnsServers: [dns.address],
      caFile: ca.certFile,
      client: { connectionTimeoutMs: 3_000, greetingTimeoutMs: 3_000, socketTimeoutMs: 5_000 },
      mtaStsFetch: createPolicyFetcher({ ca: ca.cert, timeoutMs: 3_000, connect: new Map(DOMAINS.map((domain) => [`mta-sts.${domain}`, `127.0.0.1:${policyHost.port}`])) }),
      logger: silentLogger,
    });
    const previous = stack;
    stack = fresh;
    try {
      return await relay(destination);
    } finally {
      stack = previous;
      await fresh.close();
    }
  }

  it("refuses a --ca-file without a certificate at startup, naming the file", () => {
    assert.throws(
      () => createDeliveryStack({ hostname: "h.test", outboundPort: 25, transport: "", dnsServers: [], caFile: "/nonexistent/ca.pem", logger: silentLogger }),
      /--ca-file "\/nonexistent\/ca\.pem": cannot read/,
    );
  });

  it("never lets an unverified pooled connection serve a message that needs verification", async () => {
    const pool = new SmtpClientPool({ hostname: "mx.mailroute.test", connectionTimeoutMs: 3_000, greetingTimeoutMs: 3_000, socketTimeoutMs: 5_000, trust: verifyingContext(ca.cert) });
    const message = () => Readable.from(["Subject: pool\r\n\r\nhi\r\n"]);
    const envelope = { from: "sender@origin.test", to: "judy@secure.test", size: 24 };
    const target = { address: mx.secure.host, port: mx.secure.port, exchange: "mx.secure.test" };
    try {
      await pool.send(target, envelope, message);
      await pool.send({ ...target, tls: { requireTls: true, verifyCertificate: true, servername: "mx.secure.test", mode: "enforce" } }, envelope, message);
      assert.equal(mx.secure.connections, 2, "the opportunistic connection was not reused");
      await pool.send({ ...target, tls: { requireTls: true, verifyCertificate: true, servername: "mx.secure.test", mode: "enforce" } }, envelope, message);
      assert.equal(mx.secure.connections, 2, "the verified one was");
      // verified for one name is not verified for another: the pool key carries the name
      await assert.rejects(
        pool.send({ ...target, tls: { requireTls: true, verifyCertificate: true, servername: "mx.other.test", mode: "enforce" } }, envelope, message),
        (error: unknown) => error instanceof TlsPolicyError && error.enhanced === "4.7.5",
      );
      assert.equal(mx.secure.connections, 3);
    } finally {
      await pool.close();
    }
  });
});
