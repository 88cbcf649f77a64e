import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { SMTPServer } from "smtp-server";
import { applyTlsCredentials, createDevCredentials, loadKeyPair, TlsCredentials, TlsCredentialsError } from "../../src/smtp/tls-credentials.ts";
import { createTestCa, type TestCa, type TestLeaf } from "../support/test-ca.ts";

const MX = "mx.example.test";
let ca: TestCa;
let first: TestLeaf;
let second: TestLeaf;
let work: string;

before(() => {
  ca = createTestCa();
  // both valid for the MX name; the CN (the first name) tells them apart
  first = ca.issue("first", ["first.example.test", MX]);
  second = ca.issue("second", ["second.example.test", MX]);
  work = mkdtempSync(join(tmpdir(), "mailroute-tls-"));
});
after(() => {
  ca.remove();
  rmSync(work, { recursive: true, force: true });
});

function place(leaf: TestLeaf, dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  copyFileSync(leaf.keyFile, keyFile);
  copyFileSync(leaf.certFile, certFile);
  return { certFile, keyFile };
}

async function startTlsServer(credentials: TlsCredentials): Promise<{ server: SMTPServer; port: number; stop: () => Promise<void> }> {
  const server = new SMTPServer({
    ...credentials.current(),
    authOptional: true,
    disabledCommands: ["AUTH"],
    logger: false,
    disableReverseLookup: true,
  });
  const detach = applyTlsCredentials(server, credentials);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    server,
    port,
    stop: () => {
      detach();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Completes EHLO + STARTTLS with certificate verification, as an MTA-STS sender would, and reports what it saw. */
async function startTls(port: number, trust: string, servername = MX): Promise<{ cn: string; fingerprint256: string; rset: () => Promise<void>; close: () => void }> {
  const connection = new SMTPConnection({
    host: "127.0.0.1",
    port,
    name: "client.example.test",
    requireTLS: true,
    opportunisticTLS: false,
    servername,
    tls: { ca: [trust], servername, rejectUnauthorized: true },
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
    socketTimeout: 5_000,
  } as never);
  await new Promise<void>((resolve, reject) => {
    connection.once("error", reject);
    connection.connect(() => resolve());
  });
  const socket = (connection as unknown as { _socket: TLSSocket })._socket;
  assert.equal(connection.secure, true, "the session is encrypted");
  const peer = socket.getPeerCertificate();
  return {
    cn: String(peer.subject.CN),
    fingerprint256: peer.fingerprint256,
    rset: () => new Promise<void>((resolve, reject) => connection.reset((error?: Error | null) => (error ? reject(error) : resolve()))),
    close: () => connection.close(),
  };
}

function nextChange(credentials: TlsCredentials): Promise<string> {
  return new Promise((resolve) => {
    const stop = credentials.onChange((_pair, summary) => {
      stop();
      resolve(summary.subject);
    });
  });
}

describe("inbound STARTTLS certificate from files", () => {
  it("serves the certificate from --tls-cert to a client that verifies it against the test CA", async () => {
    const dir = mkdtempSync(join(work, "serve-"));
    const credentials = TlsCredentials.watch({ ...place(first, dir), intervalMs: 50 });
    const { port, stop } = await startTlsServer(credentials);
    try {
      const seen = await startTls(port, ca.cert);
      seen.close();
      assert.equal(seen.cn, "first.example.test");
      assert.equal(credentials.summary.subject, "CN=first.example.test");
      assert.deepEqual(credentials.summary.dnsNames, ["first.example.test", MX]);
    } finally {
      credentials.close();
      await stop();
    }
  });

  it("presents a replaced certificate to the next connection without a restart, and keeps the open session", async () => {
    const dir = mkdtempSync(join(work, "reload-"));
    const credentials = TlsCredentials.watch({ ...place(first, dir), intervalMs: 50 });
    const { port, stop } = await startTlsServer(credentials);
    try {
      const before = await startTls(port, ca.cert);
      assert.equal(before.cn, "first.example.test");

      const changed = nextChange(credentials);
      place(second, dir);
      assert.equal(await changed, "CN=second.example.test");

      const afterwards = await startTls(port, ca.cert);
      afterwards.close();
      assert.equal(afterwards.cn, "second.example.test");
      assert.notEqual(afterwards.fingerprint256, before.fingerprint256);
      await before.rset(); // the session encrypted with the old certificate still answers
      before.close();
    } finally {
      credentials.close();
      await stop();
    }
  });

  it("keeps serving the previous pair while a renewal has written only the new certificate, then takes the pair", async () => {
    const dir = mkdtempSync(join(work, "half-"));
    const files = place(first, dir);
    const errors: TlsCredentialsError[] = [];
    const credentials = TlsCredentials.watch({ ...files, intervalMs: 50, onError: (error) => errors.push(error) });
    try {
      copyFileSync(second.certFile, files.certFile);
      assert.equal(credentials.reload(), false);
      assert.equal(credentials.current().cert, first.cert, "the matching old pair stays current");
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.file, files.keyFile);
      assert.match(errors[0]?.message ?? "", /does not match the certificate/);

      const changed = nextChange(credentials);
      copyFileSync(second.keyFile, files.keyFile);
      assert.equal(await changed, "CN=second.example.test");
      assert.equal(credentials.current().key, second.key);
    } finally {
      credentials.close();
    }
  });

  it("notices files renamed into place, as renewal tools and secret mounts replace them", async () => {
    const dir = mkdtempSync(join(work, "rename-"));
    const files = place(first, dir);
    const credentials = TlsCredentials.watch({ ...files, intervalMs: 50 });
    try {
      const changed = nextChange(credentials);
      copyFileSync(second.keyFile, `${files.keyFile}.new`);
      copyFileSync(second.certFile, `${files.certFile}.new`);
      renameSync(`${files.keyFile}.new`, files.keyFile);
      renameSync(`${files.certFile}.new`, files.certFile);
      assert.equal(await changed, "CN=second.example.test");
    } finally {
      credentials.close();
    }
  });

  it("does not announce a rewrite that leaves the content unchanged", () => {
    const dir = mkdtempSync(join(work, "same-"));
    const files = place(first, dir);
    const credentials = TlsCredentials.watch(files);
    let announced = 0;
    credentials.onChange(() => announced++);
    try {
      place(first, dir);
      assert.equal(credentials.reload(), false);
      assert.equal(announced, 0);
    } finally {
      credentials.close();
    }
  });
});

describe("refusing unusable certificate files", () => {
  it("refuses a key that belongs to another certificate, naming the key file and the certificate file", () => {
    assert.throws(
      () => loadKeyPair(first.certFile, second.keyFile),
      (error: unknown) =>
        error instanceof TlsCredentialsError &&
        error.file === second.keyFile &&
        error.message === `TLS key "${second.keyFile}" does not match the certificate in "${first.certFile}" (CN=first.example.test)`,
    );
    assert.throws(() => TlsCredentials.watch({ certFile: first.certFile, keyFile: second.keyFile }), TlsCredentialsError);
  });

  it("refuses a certificate file that is not PEM, naming it", () => {
    const bad = join(work, "not-a-cert.pem");
    writeFileSync(bad, "hello\n");
    assert.throws(() => loadKeyPair(bad, first.keyFile), { name: "TlsCredentialsError", message: new RegExp(`^TLS certificate "${bad}": not a PEM certificate`) });
  });

  it("refuses a key file that is not a private key, naming it", () => {
    assert.throws(() => loadKeyPair(first.certFile, first.certFile), { message: new RegExp(`^TLS key "${first.certFile}": not an unencrypted PEM private key`) });
  });

  it("refuses a missing file, naming it", () => {
    const missing = join(work, "missing.pem");
    assert.throws(() => loadKeyPair(missing, first.keyFile), { message: `TLS certificate "${missing}": cannot read (ENOENT)` });
  });
});

describe("dev mode self-signed certificate", () => {
  it("generates a certificate for the hostname in the data directory, key readable by the owner only", async () => {
    const dataDir = mkdtempSync(join(work, "dev-"));
    const credentials = await createDevCredentials("MX.Dev.Example.", dataDir);
    try {
      assert.deepEqual(credentials.summary.dnsNames, ["mx.dev.example"]);
      assert.equal(credentials.summary.subject, "CN=mx.dev.example");
      assert.equal(statSync(join(dataDir, "tls", "dev-key.pem")).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(dataDir, "tls", "dev-cert.pem"), "utf8"), credentials.current().cert);
    } finally {
      credentials.close();
    }
  });

  it("makes it on a thread of its own: selfsigned and @peculiar never load in the caller's thread (issue 11, RSS)", async () => {
    const dataDir = mkdtempSync(join(work, "dev-thread-"));
    // a child process whose main thread records every module it loads (a hook cannot be added to this one's)
    const script = join(dataDir, "probe.mts");
    writeFileSync(
      script,
      `
      import { registerHooks } from "node:module";
      const loaded = [];
      registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
      const { createDevCredentials } = await import(${JSON.stringify(new URL("../../src/smtp/tls-credentials.ts", import.meta.url).href)});
      const credentials = await createDevCredentials("mx.thread.example", ${JSON.stringify(dataDir)});
      credentials.close();
      console.log(JSON.stringify({ dnsNames: credentials.summary.dnsNames, heavy: loaded.filter((url) => url.includes("/node_modules/selfsigned/") || url.includes("/node_modules/@peculiar/")).length }));
    `,
    );
    const { execFileSync } = await import("node:child_process");
    const stdout = execFileSync(process.execPath, [script], { encoding: "utf8", timeout: 60_000 });
    assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1)!), { dnsNames: ["mx.thread.example"], heavy: 0 });
  });

  it("keeps the same certificate across restarts, and makes a new one when the hostname changes", async () => {
    const dataDir = mkdtempSync(join(work, "dev-"));
    const firstStart = await createDevCredentials("mx.dev.example", dataDir);
    firstStart.close();
    const secondStart = await createDevCredentials("mx.dev.example", dataDir);
    secondStart.close();
    assert.equal(secondStart.summary.fingerprint256, firstStart.summary.fingerprint256);

    const renamed = await createDevCredentials("mail.dev.example", dataDir);
    renamed.close();
    assert.notEqual(renamed.summary.fingerprint256, firstStart.summary.fingerprint256);
    assert.deepEqual(renamed.summary.dnsNames, ["mail.dev.example"]);
  });

  it("makes a new certificate when the stored one expires within 30 days", async () => {
    const dataDir = mkdtempSync(join(work, "dev-"));
    const original = await createDevCredentials("mx.dev.example", dataDir);
    original.close();
    const later = new Date(original.summary.validTo.getTime() - 10 * 86_400_000);
    const renewed = await createDevCredentials("mx.dev.example", dataDir, { now: () => later });
    renewed.close();
    assert.notEqual(renewed.summary.fingerprint256, original.summary.fingerprint256);
    assert.ok(renewed.summary.validTo > original.summary.validTo);
  });

  it("completes STARTTLS with the dev certificate for a client that trusts it", async () => {
    const dataDir = mkdtempSync(join(work, "dev-"));
    const credentials = await createDevCredentials("mx.dev.example", dataDir);
    const { port, stop } = await startTlsServer(credentials);
    try {
      const seen = await startTls(port, credentials.current().cert, "mx.dev.example");
      seen.close();
      assert.equal(seen.cn, "mx.dev.example");
    } finally {
      credentials.close();
      await stop();
    }
  });
});
