import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { connect as connectTcp } from "node:net";
import { join } from "node:path";
import { connect as connectTls, type PeerCertificate } from "node:tls";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { certificateFiles } from "../../src/acme/acme-certificates.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { freePort, pebbleInstalled, startPebble, type Pebble } from "../support/pebble.ts";
import { createTestCa, type TestCa } from "../support/test-ca.ts";

const HOST = "mx.acme.test";
const ZONE = "acme.example";

/** The certificate our SMTP server presents after STARTTLS, verified against `ca` for HOST. */
function starttlsCertificate(port: number, ca: string): Promise<{ authorized: boolean; error: string | null; cert: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, "127.0.0.1");
    let buffer = "";
    let step = 0;
    socket.setEncoding("utf8");
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      if (!/^\d{3} [^\n]*\r\n$/m.test(buffer.split("\r\n").slice(-2).join("\r\n"))) return;
      const reply = buffer;
      buffer = "";
      if (step === 0) socket.write(`EHLO probe.acme.test\r\n`);
      else if (step === 1) socket.write("STARTTLS\r\n");
      else if (step === 2) {
        if (!reply.startsWith("220")) return reject(new Error(`STARTTLS refused: ${reply}`));
        socket.removeAllListeners("data");
        const secure = connectTls({ socket, servername: HOST, ca, rejectUnauthorized: false }, () => {
          const result = { authorized: secure.authorized, error: secure.authorizationError === null ? null : String(secure.authorizationError), cert: secure.getPeerCertificate() };
          secure.end();
          resolve(result);
        });
        secure.on("error", reject);
      }
      step++;
    });
  });
}

function httpsGet(port: number, host: string, path: string, ca: string): Promise<{ status: number; body: string; issuer: string; subjectAltName: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    // verified as a sender does: the chain to Pebble's root and the name
    const req = request({ host: "127.0.0.1", port, path, servername: host, headers: { host }, ca, rejectUnauthorized: true }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      const socket = res.socket as import("node:tls").TLSSocket;
      const peer = socket.getPeerCertificate();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, issuer: String(peer.issuer?.CN ?? ""), subjectAltName: peer.subjectaltname ?? "", authorized: socket.authorized }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function eventually<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${String(last)})`);
}

describe("ACME certificates from a real RFC 8555 CA (Pebble) on loopback", { skip: pebbleInstalled() ? false : "the pebble package is not installed: .ci/run installs it (apt-get install pebble)" }, () => {
  let ca: TestCa;
  let dns: TestDnsServer;
  let pebble: Pebble;
  let h: Harness;
  let trust: string;

  before(async () => {
    ca = createTestCa();
    dns = await startDnsServer();
    dns.setRecords(HOST, "A", ["127.0.0.1"]);
    dns.setRecords(`mta-sts.${ZONE}`, "A", ["127.0.0.1"]);
    const httpPort = await freePort();
    pebble = await startPebble({ ca, dnsServer: dns.address, httpChallengePort: httpPort });
    // our --ca-file: the test CA (Pebble's own HTTPS) and Pebble's root (the certificates it issues)
    trust = join(ca.dir, "trust.pem");
    writeFileSync(trust, `${ca.cert}\n${pebble.rootPem}\n`);
    h = await startHarness({
      destinations: [],
      settings: {
        hostname: HOST,
        "http-port": String(httpPort),
        "https-port": "0",
        "acme-directory": pebble.directoryUrl,
        "acme-email": `ops@${ZONE}`,
        "ca-file": trust,
      },
      // renew at every check, every two seconds: the test sees issuance, then renewal
      overrides: { acme: { renewBeforeMs: 100 * 365 * 86_400_000, checkEveryMs: 2_000 }, ...(process.env["ACME_TEST_LOG"] ? { logger: createLogger({ stream: process.stderr }) } : {}) },
    });
    await h.config.zones.create(ZONE);
    await h.reload();
  });

  after(async () => {
    await h?.stop();
    await pebble?.stop();
    await dns?.stop();
    ca?.remove();
  });

  it("presents a usable certificate (the self-signed placeholder or already the issued one) while the first order runs", async () => {
    // the very first answer, before any order could finish, or already Pebble's: never a broken one
    const first = await starttlsCertificate(h.port, pebble.rootPem);
    assert.ok(String(first.cert.subject?.CN) === HOST || /Pebble/.test(String(first.cert.issuer?.CN ?? "")), JSON.stringify(first.cert.issuer));
  });

  it("obtains the MX certificate over HTTP-01 and presents it on STARTTLS without a restart", async () => {
    const presented = await eventually("a Pebble certificate on STARTTLS", async () => {
      const result = await starttlsCertificate(h.port, pebble.rootPem);
      return result.authorized ? result : null;
    }, 60_000);
    assert.match(String(presented.cert.issuer?.CN ?? ""), /Pebble/);
    assert.ok(presented.cert.subjectaltname?.includes(`DNS:${HOST}`), presented.cert.subjectaltname);
    const files = certificateFiles(join(h.dataDir, "acme"), HOST);
    assert.equal(statSync(files.keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(h.dataDir, "acme", "account-key.pem")).mode & 0o777, 0o600);
  });

  it("obtains the policy host's certificate, serves the policy over HTTPS with it, and then serves mode: enforce", async () => {
    const policy = await eventually("the policy over HTTPS with a valid certificate", async () => {
      const answer = await httpsGet(h.mailroute.https!.port, `mta-sts.${ZONE}`, "/.well-known/mta-sts.txt", pebble.rootPem);
      return answer.authorized && answer.status === 200 && answer.body.includes("mode: enforce") ? answer : null;
    }, 60_000);
    assert.match(policy.body, new RegExp(`^version: STSv1\\nmode: enforce\\nmx: ${HOST.replaceAll(".", "\\.")}\\n`));
    assert.match(policy.issuer, /Pebble/);
    assert.equal(policy.subjectAltName, `DNS:mta-sts.${ZONE}`);
  });

  it("renews before expiry and reloads the new certificate", async () => {
    const serialOf = async () => {
      const result = await starttlsCertificate(h.port, pebble.rootPem);
      return result.authorized ? new X509Certificate(result.cert.raw).serialNumber : null;
    };
    const before = await eventually("a Pebble certificate", serialOf, 60_000);
    const renewed = await eventually("a renewed certificate", async () => {
      const serial = await serialOf();
      return serial !== null && serial !== before ? serial : null;
    }, 60_000);
    assert.notEqual(renewed, before);
  });
});
