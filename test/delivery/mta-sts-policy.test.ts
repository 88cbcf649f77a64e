import { localFailure } from "../../src/delivery/local-attempt.ts";
import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { Readable } from "node:stream";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { SMTPServer } from "smtp-server";
import { loadCaFile, trustBundle, verifyingContext } from "../../src/delivery/certificate-trust.ts";
import { createPolicyFetcher, MtaStsFetchError, type PolicyFetcher } from "../../src/delivery/mta-sts-fetch.ts";
import { createMtaStsResolver, mxMatchesPolicy, tlsRequirementFor, type MtaStsPolicy, type MtaStsResolverOptions, type TxtLookup } from "../../src/delivery/mta-sts-policy.ts";
import { smtpTlsOptions, tlsPolicyFailure, TlsPolicyError, tlsPoolKey, unmetTlsRequirement } from "../../src/delivery/outbound-tls.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { startPolicyHost, type PolicyAnswer, type PolicyHost } from "../support/mta-sts-policy-host.ts";
import { createTestCa, type TestCa, type TestLeaf } from "../support/test-ca.ts";

// Policy domains the trusted policy host has a certificate for.
const DOMAINS = ["enforce.test", "testing.test", "none.test", "cached.test", "broken.test", "e2e.test"] as const;

let ca: TestCa;
let dns: TestDnsServer;
let trusted: PolicyHost; // certificate from the test CA for every mta-sts.<domain>
let selfSigned: PolicyHost; // same names, certificate trusted by nobody
let misnamed: PolicyHost; // test CA certificate, but for other names
let mxLeaf: TestLeaf;
let clock: number;

function policyText(mode: string, mx: readonly string[], maxAge = 86_400): string {
  return ["version: STSv1", `mode: ${mode}`, ...mx.map((entry) => `mx: ${entry}`), `max_age: ${maxAge}`, ""].join("\r\n");
}

/** Publishes `_mta-sts.<domain>` with `id` on the loopback DNS server and a policy on `host`. */
function publish(domain: string, id: string, body: string | PolicyAnswer, host: PolicyHost = trusted): void {
  dns.setRecords(`_mta-sts.${domain}`, "TXT", [`v=STSv1; id=${id}`]);
  host.answers.set(`mta-sts.${domain}`, typeof body === "string" ? { body } : body);
}

function txtViaLoopbackDns(): TxtLookup {
  return (name) => {
    const resolver = new Resolver({ timeout: 1_000, tries: 1 });
    resolver.setServers([dns.address]);
    return resolver.resolveTxt(name);
  };
}

/** The production fetcher, trusting the test CA, with every policy host reached on `host`'s loopback port. */
function fetcherFor(host: PolicyHost, options: { timeoutMs?: number; maxBytes?: number } = {}): PolicyFetcher {
  return createPolicyFetcher({
    ca: ca.cert,
    connect: new Map(DOMAINS.map((domain) => [`mta-sts.${domain}`, `127.0.0.1:${host.port}`])),
    timeoutMs: options.timeoutMs ?? 2_000,
    maxBytes: options.maxBytes,
  });
}

function resolverWith(options: Partial<MtaStsResolverOptions> & { host?: PolicyHost } = {}) {
  return createMtaStsResolver({
    txtLookup: txtViaLoopbackDns(),
    fetchPolicy: fetcherFor(options.host ?? trusted),
    timeoutMs: 3_000,
    now: () => clock,
    ...options,
  });
}

function fetches(domain: string, host: PolicyHost = trusted): number {
  return host.requests.get(`mta-sts.${domain}`) ?? 0;
}

before(async () => {
  ca = createTestCa();
  const names = DOMAINS.map((domain) => `mta-sts.${domain}`);
  const otherCa = createTestCa("Untrusted CA");
  dns = await startDnsServer();
  trusted = await startPolicyHost(ca.issue("policy-host", names));
  selfSigned = await startPolicyHost(otherCa.selfSigned("policy-host-self", names));
  misnamed = await startPolicyHost(ca.issue("policy-host-misnamed", ["www.example.test"]));
  mxLeaf = ca.issue("mx", ["mx1.e2e.test"]);
  otherCa.remove();
});
after(async () => {
  await Promise.all([dns.stop(), trusted.stop(), selfSigned.stop(), misnamed.stop()]);
  ca.remove();
});
beforeEach(() => {
  dns.clear();
  for (const host of [trusted, selfSigned, misnamed]) {
    host.answers.clear();
    host.requests.clear();
    host.connections = 0;
  }
  clock = 1_700_000_000_000;
});

describe("MTA-STS policy discovery and fetch (RFC 8461 §3)", () => {
  it("fetches an enforce policy named by the _mta-sts TXT record over HTTPS", async () => {
    publish("enforce.test", "20240101T000000", policyText("enforce", ["mx1.enforce.test", "*.backup.enforce.test"], 604_800));

    const policy = await resolverWith()("Enforce.TEST.");

    assert.deepEqual(policy, { mode: "enforce", mx: ["mx1.enforce.test", "*.backup.enforce.test"], maxAge: 604_800, id: "20240101T000000" });
    assert.equal(fetches("enforce.test"), 1);
  });

  it("parses testing and none policies", async () => {
    publish("testing.test", "t1", policyText("testing", ["mx.testing.test"]));
    publish("none.test", "n1", policyText("none", []));
    const policyFor = resolverWith();

    assert.deepEqual(await policyFor("testing.test"), { mode: "testing", mx: ["mx.testing.test"], maxAge: 86_400, id: "t1" });
    assert.deepEqual(await policyFor("none.test"), { mode: "none", mx: [], maxAge: 86_400, id: "n1" });
  });

  it("finds no policy, and fetches nothing, when the domain has no _mta-sts TXT record", async () => {
    trusted.answers.set("mta-sts.enforce.test", { body: policyText("enforce", ["mx.enforce.test"]) });

    assert.equal(await resolverWith()("enforce.test"), null);
    assert.equal(fetches("enforce.test"), 0);
  });

  it("ignores TXT records that are not v=STSv1, and finds no policy when two are published", async () => {
    dns.setRecords("_mta-sts.enforce.test", "TXT", ["v=spf1 -all", "v=STSv1; id=one"]);
    trusted.answers.set("mta-sts.enforce.test", { body: policyText("enforce", ["mx.enforce.test"]) });
    assert.equal((await resolverWith()("enforce.test"))?.id, "one");

    dns.setRecords("_mta-sts.testing.test", "TXT", ["v=STSv1; id=one", "v=STSv1; id=two"]);
    trusted.answers.set("mta-sts.testing.test", { body: policyText("enforce", ["mx.testing.test"]) });
    assert.equal(await resolverWith()("testing.test"), null);
    assert.equal(fetches("testing.test"), 0);
  });

  it("does not follow a redirect from the policy host", async () => {
    publish("enforce.test", "r1", { status: 301, headers: { location: "https://mta-sts.testing.test/.well-known/mta-sts.txt" } });
    publish("testing.test", "r1", policyText("enforce", ["mx.enforce.test"]));

    assert.equal(await resolverWith()("enforce.test"), null);
    assert.equal(fetches("testing.test"), 0);
    await assert.rejects(fetcherFor(trusted)("enforce.test"), { name: "MtaStsFetchError", reason: "http-status", message: /HTTP 301 \(redirects are not followed\)/ });
  });

  it("refuses a policy larger than the size cap", async () => {
    const padded = policyText("enforce", ["mx.enforce.test"]) + `${"# padding\r\n".repeat(7_000)}`;
    publish("enforce.test", "big", padded);
    await assert.rejects(fetcherFor(trusted)("enforce.test"), { reason: "too-large" });
    assert.equal(await resolverWith()("enforce.test"), null);
  });

  it("refuses a policy host whose certificate is self-signed or names another host", async () => {
    publish("enforce.test", "c1", policyText("enforce", ["mx.enforce.test"]), selfSigned);
    await assert.rejects(fetcherFor(selfSigned)("enforce.test"), { reason: "tls", message: /self-signed certificate/ });
    assert.equal(await resolverWith({ host: selfSigned })("enforce.test"), null);

    publish("enforce.test", "c1", policyText("enforce", ["mx.enforce.test"]), misnamed);
    await assert.rejects(fetcherFor(misnamed)("enforce.test"), { reason: "tls", message: /mta-sts\.enforce\.test/ });
  });

  it("trusts only Node's roots unless --ca-file adds one", async () => {
    publish("enforce.test", "c1", policyText("enforce", ["mx.enforce.test"]));
    const withoutCa = createPolicyFetcher({ connect: new Map([["mta-sts.enforce.test", `127.0.0.1:${trusted.port}`]]), timeoutMs: 2_000 });
    await assert.rejects(withoutCa("enforce.test"), (error: unknown) => error instanceof MtaStsFetchError && error.reason === "tls");

    const bundle = trustBundle(ca.cert) ?? [];
    assert.ok(bundle.includes(ca.cert.trim()), "the test CA is in the bundle");
    assert.ok(bundle.length > 100, "and Node's roots are still there");
    assert.equal(trustBundle(undefined), undefined);
  });

  it("reads --ca-file, and refuses one without a certificate, naming it", () => {
    assert.deepEqual(loadCaFile(ca.certFile), [ca.cert.trim()]);
    const notPem = join(ca.dir, "policy-host.key");
    assert.throws(() => loadCaFile(notPem), { message: `--ca-file "${notPem}": no PEM certificate found` });
    assert.throws(() => loadCaFile(join(ca.dir, "absent.pem")), { message: /^--ca-file ".*absent\.pem": cannot read \(ENOENT\)$/ });
  });

  it("gives up on a policy host that never answers within the timeout", async () => {
    publish("enforce.test", "slow", { stall: true });
    const started = Date.now();
    const policy = await resolverWith({ fetchPolicy: fetcherFor(trusted, { timeoutMs: 300 }) })("enforce.test");
    assert.equal(policy, null);
    assert.ok(Date.now() - started < 2_000);
    await assert.rejects(fetcherFor(trusted, { timeoutMs: 200 })("enforce.test"), { reason: "timeout" });
  });

  it("finds no policy when the policy file is not a valid policy", async () => {
    publish("enforce.test", "bad", "version: STSv1\r\nmode: strict\r\nmx: mx.enforce.test\r\nmax_age: 86400\r\n");
    assert.equal(await resolverWith()("enforce.test"), null);
  });
});

describe("MTA-STS policy cache", () => {
  it("uses the cached policy without fetching again while the TXT id is unchanged", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"]));
    const policyFor = resolverWith({ recheckMs: 0 });

    await policyFor("cached.test");
    clock += 3_600_000;
    const again = await policyFor("cached.test");

    assert.equal(again?.id, "v1");
    assert.equal(fetches("cached.test"), 1);
  });

  it("does not even look at DNS again within recheckMs", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"]));
    const policyFor = resolverWith({ recheckMs: 60_000 });

    await policyFor("cached.test");
    const queries = dns.queries.length;
    clock += 59_000;
    await policyFor("cached.test");

    assert.equal(dns.queries.length, queries);
  });

  it("fetches again when the TXT id changes", async () => {
    publish("cached.test", "v1", policyText("testing", ["mx.cached.test"]));
    const policyFor = resolverWith({ recheckMs: 0 });
    assert.equal((await policyFor("cached.test"))?.mode, "testing");

    publish("cached.test", "v2", policyText("enforce", ["mx.cached.test"]));
    const updated = await policyFor("cached.test");

    assert.deepEqual([updated?.id, updated?.mode], ["v2", "enforce"]);
    assert.equal(fetches("cached.test"), 2);
  });

  it("keeps a cached enforce policy when the new policy cannot be fetched (bad certificate)", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"]));
    const trustedFetch = fetcherFor(trusted);
    const selfSignedFetch = fetcherFor(selfSigned);
    let fetchPolicy = trustedFetch;
    const policyFor = resolverWith({ recheckMs: 0, fetchPolicy: (domain, options) => fetchPolicy(domain, options) });
    await policyFor("cached.test");

    // an attacker between us and the policy host: new id in DNS, a certificate we do not trust
    publish("cached.test", "v2", policyText("none", []), selfSigned);
    fetchPolicy = selfSignedFetch;
    const kept = await policyFor("cached.test");

    assert.deepEqual([kept?.id, kept?.mode], ["v1", "enforce"]);
    assert.equal(selfSigned.connections, 1, "the new policy was tried, and its certificate refused");
    assert.equal(fetches("cached.test", selfSigned), 0);
  });

  it("keeps a cached policy when the TXT record disappears, until the policy expires", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"], 3_600));
    const policyFor = resolverWith({ recheckMs: 0 });
    await policyFor("cached.test");

    dns.setRecords("_mta-sts.cached.test", "TXT", []);
    clock += 1_800_000;
    assert.equal((await policyFor("cached.test"))?.mode, "enforce");

    clock += 1_800_001;
    assert.equal(await policyFor("cached.test"), null);
  });

  it("does not apply an expired policy when the refetch fails", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"], 600));
    const policyFor = resolverWith({ recheckMs: 0 });
    await policyFor("cached.test");

    trusted.answers.set("mta-sts.cached.test", { status: 500 });
    clock += 600_001;

    assert.equal(await policyFor("cached.test"), null);
    assert.equal(fetches("cached.test"), 2);
  });

  it("refreshes a policy halfway to its expiry even when the id is unchanged", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"], 3_600));
    const policyFor = resolverWith({ recheckMs: 0 });
    await policyFor("cached.test");

    clock += 1_000_000;
    await policyFor("cached.test");
    assert.equal(fetches("cached.test"), 1);

    clock += 900_000; // 1,900 s of 3,600
    await policyFor("cached.test");
    assert.equal(fetches("cached.test"), 2);

    // the refreshed copy lives a full max_age from its own fetch
    clock += 3_000_000;
    trusted.answers.set("mta-sts.cached.test", { status: 503 });
    assert.equal((await policyFor("cached.test"))?.mode, "enforce");
  });

  it("does not retry a failing policy host for every message", async () => {
    publish("broken.test", "b1", { status: 503 });
    const policyFor = resolverWith({ recheckMs: 0, failureRetryMs: 300_000 });

    assert.equal(await policyFor("broken.test"), null);
    clock += 60_000;
    assert.equal(await policyFor("broken.test"), null);
    assert.equal(fetches("broken.test"), 1);

    trusted.answers.set("mta-sts.broken.test", { body: policyText("enforce", ["mx.broken.test"]) });
    clock += 300_000;
    assert.equal((await policyFor("broken.test"))?.mode, "enforce");
  });

  it("shares one lookup among concurrent deliveries to the same domain", async () => {
    publish("cached.test", "v1", policyText("enforce", ["mx.cached.test"]));
    const policyFor = resolverWith();

    const policies = await Promise.all(Array.from({ length: 5 }, () => policyFor("cached.test")));

    assert.ok(policies.every((policy) => policy?.id === "v1"));
    assert.equal(fetches("cached.test"), 1);
  });

  it("settles within timeoutMs even when DNS never answers", async () => {
    const policyFor = createMtaStsResolver({ txtLookup: () => new Promise(() => {}), fetchPolicy: () => Promise.reject(new Error("unused")), timeoutMs: 100, now: () => clock });
    assert.equal(await policyFor("enforce.test"), null);
  });
});

describe("MX host matching (RFC 8461 §4.1)", () => {
  const policy = { mx: ["mx1.example.com", "*.mx.example.net", "MX2.Example.COM."] };

  it("matches a listed host exactly, ignoring case and a trailing dot", () => {
    assert.equal(mxMatchesPolicy("mx1.example.com", policy), true);
    assert.equal(mxMatchesPolicy("MX1.EXAMPLE.COM.", policy), true);
    assert.equal(mxMatchesPolicy("mx2.example.com", policy), true);
    assert.equal(mxMatchesPolicy("mx3.example.com", policy), false);
    assert.equal(mxMatchesPolicy("evil-mx1.example.com", policy), false);
  });

  it("lets a wildcard stand for exactly one left-most label", () => {
    assert.equal(mxMatchesPolicy("a.mx.example.net", policy), true);
    assert.equal(mxMatchesPolicy("mx.example.net", policy), false, "not the parent itself");
    assert.equal(mxMatchesPolicy("a.b.mx.example.net", policy), false, "not two labels");
    assert.equal(mxMatchesPolicy("a.xmx.example.net", policy), false);
    assert.equal(mxMatchesPolicy("*.mx.example.net", policy), false, "a host name is never a pattern");
  });

  it("compares internationalized names in their A-label form", () => {
    assert.equal(mxMatchesPolicy("mx.bücher.example", { mx: ["mx.xn--bcher-kva.example"] }), true);
  });
});

describe("what a policy requires of a connection to one MX (RFC 8461 §5)", () => {
  const enforce: MtaStsPolicy = { mode: "enforce", mx: ["*.mx.example.com"], maxAge: 86_400, id: "1" };

  it("requires STARTTLS with a verified certificate for a listed MX under enforce", () => {
    assert.deepEqual(tlsRequirementFor(enforce, "A.MX.example.com."), { requireTls: true, verifyCertificate: true, servername: "a.mx.example.com", mode: "enforce" });
  });

  it("refuses an MX the enforce policy does not list", () => {
    assert.deepEqual(tlsRequirementFor(enforce, "mx.attacker.example"), { refuse: "mx-not-listed", servername: "mx.attacker.example", mode: "enforce" });
  });

  it("stays opportunistic under testing, none, or no policy, listed or not", () => {
    for (const policy of [{ ...enforce, mode: "testing" as const }, { ...enforce, mode: "none" as const }, null]) {
      const requirement = tlsRequirementFor(policy, "mx.attacker.example");
      assert.ok(!("refuse" in requirement));
      assert.deepEqual([requirement.requireTls, requirement.verifyCertificate], [false, false]);
    }
  });

  it("prescribes nodemailer options that cannot fall back to plain text, and keeps verified connections in their own pool", () => {
    const required = tlsRequirementFor(enforce, "a.mx.example.com");
    assert.ok(!("refuse" in required));
    const trust = verifyingContext(ca.cert);
    const options = smtpTlsOptions(required, trust);
    assert.deepEqual(
      { requireTLS: options.requireTLS, opportunisticTLS: options.opportunisticTLS, rejectUnauthorized: options.tls.rejectUnauthorized, servername: options.tls.servername },
      { requireTLS: true, opportunisticTLS: false, rejectUnauthorized: true, servername: "a.mx.example.com" },
    );
    assert.equal(options.tls.secureContext, trust);
    const opportunistic = tlsRequirementFor(null, "a.mx.example.com");
    assert.ok(!("refuse" in opportunistic));
    assert.notEqual(tlsPoolKey(required), tlsPoolKey(opportunistic));
  });
});

describe("delivering to an MTA-STS enforce domain over real SMTP", () => {
  interface Mx {
    port: number;
    received: { secure: boolean }[];
    connections: number;
    stop(): Promise<void>;
  }

  async function startMx(leaf: TestLeaf | null): Promise<Mx> {
    const received: { secure: boolean }[] = [];
    let connections = 0;
    const server = new SMTPServer({
      authOptional: true,
      logger: false,
      disableReverseLookup: true,
      ...(leaf ? { key: leaf.key, cert: leaf.cert, disabledCommands: ["AUTH"] } : { disabledCommands: ["AUTH", "STARTTLS"], hideSTARTTLS: true }),
      onConnect(_session, callback) {
        connections++;
        callback();
      },
      onData(stream, session, callback) {
        stream.resume();
        stream.on("end", () => {
          received.push({ secure: session.secure });
          callback(null, "250 2.0.0 Ok: queued");
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      port: (server.server.address() as AddressInfo).port,
      received,
      get connections() {
        return connections;
      },
      stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  /**
   * What the integrated client does for one MX target: policy → requirement → connection options,
   * connect-phase errors classified, plain text never accepted under a requirement.
   */
  async function deliver(policy: MtaStsPolicy | null, exchange: string, port: number): Promise<string> {
    const requirement = tlsRequirementFor(policy, exchange);
    if ("refuse" in requirement) throw new TlsPolicyError("mx-not-listed", requirement.servername, "");
    const connection = new SMTPConnection({
      host: "127.0.0.1",
      port,
      name: "mailroute.example",
      connectionTimeout: 3_000,
      greetingTimeout: 3_000,
      socketTimeout: 3_000,
      ...smtpTlsOptions(requirement, mxTrust),
    } as never);
    try {
      await new Promise<void>((resolve, reject) => {
        connection.once("error", (error: Error) => reject(tlsPolicyFailure(error, requirement, connection) ?? error));
        connection.connect(() => resolve());
      });
      const unmet = unmetTlsRequirement(requirement, connection);
      if (unmet) throw unmet;
      return await new Promise<string>((resolve, reject) => {
        connection.send({ from: "a@mailroute.example", to: ["b@e2e.test"] } as never, Readable.from(["Subject: hi\r\n\r\nhello\r\n"]), (error: Error | null, info: { response?: string }) =>
          error ? reject(error) : resolve(info.response ?? ""),
        );
      });
    } finally {
      connection.close();
    }
  }

  let mxTrust: ReturnType<typeof verifyingContext>;
  before(() => {
    mxTrust = verifyingContext(ca.cert); // once, as the service does at startup
  });

  async function enforcedPolicy(): Promise<MtaStsPolicy> {
    publish("e2e.test", "e1", policyText("enforce", ["mx1.e2e.test", "mx2.e2e.test"]));
    const policy = await resolverWith()("e2e.test");
    assert.equal(policy?.mode, "enforce");
    return policy!;
  }

  it("fails temporarily (451 4.7.4) and delivers nothing when a listed MX offers no STARTTLS", async () => {
    const policy = await enforcedPolicy();
    const plain = await startMx(null);
    try {
      await assert.rejects(deliver(policy, "mx2.e2e.test", plain.port), (error: unknown) => {
        assert.ok(error instanceof TlsPolicyError, String(error));
        const attempt = localFailure("tls-policy", { detail: error.message }, error.enhanced);
        assert.deepEqual([attempt.status, attempt.code], ["temporary", 451]);
        assert.equal(error.enhanced, "4.7.4");
        assert.equal(error.kind, "starttls-unavailable");
        assert.match(attempt.reply, /^4\.7\.4 MX mx2\.e2e\.test does not offer STARTTLS: 500 .*\(MTA-STS policy enforce\)$/);
        return true;
      });
      assert.equal(plain.received.length, 0);

      // the same MX under a testing policy: opportunistic, so the message goes in plain text
      assert.match(await deliver({ ...policy, mode: "testing" }, "mx2.e2e.test", plain.port), /^250 /);
      assert.deepEqual(plain.received, [{ secure: false }]);
    } finally {
      await plain.stop();
    }
  });

  it("fails temporarily (451 4.7.5) when a listed MX's certificate is not valid for its name", async () => {
    const policy = await enforcedPolicy();
    const impostor = await startMx(mxLeaf); // certificate for mx1.e2e.test, serving as mx2
    try {
      await assert.rejects(deliver(policy, "mx2.e2e.test", impostor.port), (error: unknown) => {
        assert.ok(error instanceof TlsPolicyError, String(error));
        const attempt = localFailure("tls-policy", { detail: error.message }, error.enhanced);
        assert.deepEqual([attempt.code, error.enhanced, error.kind], [451, "4.7.5", "tls-failed"]);
        assert.match(attempt.reply, /^4\.7\.5 .*mx2\.e2e\.test/);
        return true;
      });
      assert.equal(impostor.received.length, 0);
    } finally {
      await impostor.stop();
    }
  });

  it("does not connect to an MX the enforce policy does not list", async () => {
    const policy = await enforcedPolicy();
    const unlisted = await startMx(mxLeaf);
    try {
      await assert.rejects(deliver(policy, "mx.elsewhere.test", unlisted.port), { name: "TlsPolicyError", kind: "mx-not-listed", enhanced: "4.7.4" });
      assert.equal(unlisted.connections, 0);
    } finally {
      await unlisted.stop();
    }
  });

  it("delivers over verified TLS to a listed MX with a certificate from the trusted CA", async () => {
    const policy = await enforcedPolicy();
    const mx = await startMx(mxLeaf);
    try {
      assert.match(await deliver(policy, "mx1.e2e.test", mx.port), /^250 /);
      assert.deepEqual(mx.received, [{ secure: true }]);
    } finally {
      await mx.stop();
    }
  });

  it("refuses a certificate that names the MX only in its subject CN (RFC 8461 wants a DNS-ID)", async () => {
    const policy = await enforcedPolicy();
    const legacy = await startMx(ca.issue("mx-cn-only", ["mx1.e2e.test"], { subjectAltName: false }));
    try {
      await assert.rejects(deliver(policy, "mx1.e2e.test", legacy.port), { name: "TlsPolicyError", kind: "tls-failed", message: /DNS-ID/ });
      assert.equal(legacy.received.length, 0);
    } finally {
      await legacy.stop();
    }
  });

  it("leaves a connection failure that is not about TLS to the ordinary rules", async () => {
    const policy = await enforcedPolicy();
    await assert.rejects(deliver(policy, "mx1.e2e.test", 1), (error: unknown) => !(error instanceof TlsPolicyError) && /ECONNREFUSED/.test(String(error)));
  });
});
