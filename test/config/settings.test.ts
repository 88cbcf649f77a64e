import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { envName, loadSettings, SETTING_SPECS, SettingsError } from "../../src/config/settings.ts";

describe("settings", () => {
  it("uses the operator contract's defaults", () => {
    const settings = loadSettings({ hostname: "mx.example.com" }, {});
    assert.equal(settings.smtpPort, 2525);
    assert.equal(settings.smtpHost, "127.0.0.1");
    assert.equal(settings.httpPort, 8787);
    assert.equal(settings.outboundPort, 25);
    assert.equal(settings.maxMessageSize, 26214400);
    assert.equal(settings.database, null);
    assert.deepEqual(settings.dnsbl, []);
    assert.ok(settings.dataDir.endsWith("/data"));
    assert.ok(Object.isFrozen(settings));
  });

  it("gives every flag an environment twin, and a flag wins over the environment", () => {
    for (const spec of Object.values(SETTING_SPECS)) assert.match(envName(spec.flag), /^MAILROUTE_[A-Z0-9_]+$/);
    const env = { MAILROUTE_SMTP_PORT: "2600", MAILROUTE_HOSTNAME: "mx.env.example", MAILROUTE_DNS_SERVERS: "127.0.0.1:5353, [::1]:53" };
    assert.equal(loadSettings({}, env).smtpPort, 2600);
    assert.deepEqual(loadSettings({}, env).dnsServers, ["127.0.0.1:5353", "[::1]:53"]);
    assert.equal(loadSettings({ "smtp-port": "25" }, env).smtpPort, 25);
    assert.equal(loadSettings({}, env).hostname, "mx.env.example");
  });

  it("names the setting and the valid values when one is wrong", () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ "smtp-port": "70000" }, /--smtp-port: "70000" is not a whole number between 0 and 65535/],
      [{ "smtp-port": "25x" }, /--smtp-port/],
      [{ hostname: "not a host" }, /--hostname: "not a host" is not a host name/],
      [{ database: "mysql://x" }, /--database: "mysql:\/\/x" is not a postgres:\/\/ URL/],
      [{ "log-level": "loud" }, /--log-level/],
      [{ "tls-cert": "/tmp/cert.pem" }, /--tls-key: --tls-cert and --tls-key go together/],
      [{ "dkim-ed25519": "maybe" }, /--dkim-ed25519: "maybe" is not true or false/],
      [{ dnsbl: "zen.spamhaus.org,not a zone" }, /--dnsbl: "not a zone"/],
    ];
    for (const [flags, message] of bad) {
      assert.throws(() => loadSettings({ hostname: "mx.example.com", ...flags }, {}), (error: Error) => error instanceof SettingsError && message.test(error.message));
    }
  });

  it("IDNA-encodes the hostname and the block list zones", () => {
    const settings = loadSettings({ hostname: "MX.Bücher.example", dnsbl: "ZEN.spamhaus.org" }, {});
    assert.equal(settings.hostname, "mx.xn--bcher-kva.example");
    assert.deepEqual(settings.dnsbl, ["zen.spamhaus.org"]);
  });

  it("reads the admin token from --admin-token-file or MAILROUTE_ADMIN_TOKEN, refusing both at once, a missing or an empty file", () => {
    const dir = mkdtempSync(join(tmpdir(), "mailroute-settings-"));
    try {
      const file = join(dir, "token");
      writeFileSync(file, "mr_fromthefile\nignored second line\n", { mode: 0o600 });
      assert.equal(loadSettings({ hostname: "mx.example.com", "admin-token-file": file }, {}).adminToken, "mr_fromthefile");
      assert.equal(loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_ADMIN_TOKEN_FILE: file }).adminToken, "mr_fromthefile");
      assert.equal(loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_ADMIN_TOKEN: "mr_env" }).adminToken, "mr_env");
      writeFileSync(join(dir, "empty"), "\n");
      const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
        [{ "admin-token-file": file }, { MAILROUTE_ADMIN_TOKEN: "x" }, /--admin-token-file: give --admin-token-file or --admin-token \(MAILROUTE_ADMIN_TOKEN\), not both/],
        [{ "admin-token-file": join(dir, "absent") }, {}, /--admin-token-file: cannot read ".*absent" \(ENOENT\)/],
        [{ "admin-token-file": join(dir, "empty") }, {}, /--admin-token-file: ".*empty" is empty/],
      ];
      for (const [flags, env, message] of bad) {
        assert.throws(() => loadSettings({ hostname: "mx.example.com", ...flags }, env), (error: Error) => error instanceof SettingsError && message.test(error.message));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("parses the MTA-STS mode, the ACME directory (with shorthands) and the HTTPS port", () => {
    const defaults = loadSettings({ hostname: "mx.example.com" }, {});
    assert.deepEqual([defaults.mtaStsMode, defaults.acmeDirectory, defaults.acmeEmail, defaults.httpsPort, defaults.allowShortHostname], ["auto", null, null, null, false]);
    const set = loadSettings({ hostname: "mx.example.com", "mta-sts-mode": "Enforce", "acme-directory": "letsencrypt-staging", "acme-email": "ops@example.com", "https-port": "443", "allow-short-hostname": "true" }, {});
    assert.deepEqual([set.mtaStsMode, set.acmeDirectory, set.acmeEmail, set.httpsPort, set.allowShortHostname], ["enforce", "https://acme-staging-v02.api.letsencrypt.org/directory", "ops@example.com", 443, true]);
    assert.equal(loadSettings({ hostname: "mx.example.com", "acme-directory": "https://127.0.0.1:14000/dir" }, {}).acmeDirectory, "https://127.0.0.1:14000/dir");
    for (const [flags, message] of [
      [{ "mta-sts-mode": "strict" }, /--mta-sts-mode: "strict" is not one of testing, enforce, auto/],
      [{ "acme-directory": "lets encrypt" }, /--acme-directory: "lets encrypt" is not an http\(s\) URL/],
      [{ "acme-email": "ops" }, /--acme-email: "ops" is not an email address/],
      [{ "https-port": "x" }, /--https-port/],
    ] as const) {
      assert.throws(() => loadSettings({ hostname: "mx.example.com", ...flags }, {}), (error: Error) => error instanceof SettingsError && message.test(error.message));
    }
  });

  it("runs one process unless --processes says more; auto means one per core", () => {
    assert.equal(loadSettings({ hostname: "mx.example.com" }, {}).processes, 1);
    assert.equal(loadSettings({ hostname: "mx.example.com", processes: "2" }, {}).processes, 2);
    assert.equal(loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_PROCESSES: "3" }).processes, 3);
    assert.equal(loadSettings({ hostname: "mx.example.com", processes: "auto" }, {}).processes, availableParallelism());
    for (const bad of ["0", "two", "-1", "65"]) {
      assert.throws(() => loadSettings({ hostname: "mx.example.com", processes: bad }, {}), (error: Error) => error instanceof SettingsError && /^--processes: /.test(error.message));
    }
  });

  it("gives memory back when quiet unless --release-idle-memory false", () => {
    assert.equal(loadSettings({ hostname: "mx.example.com" }, {}).releaseIdleMemory, true);
    assert.equal(loadSettings({ hostname: "mx.example.com", "release-idle-memory": "false" }, {}).releaseIdleMemory, false);
    assert.equal(loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_RELEASE_IDLE_MEMORY: "false" }).releaseIdleMemory, false);
    assert.throws(() => loadSettings({ hostname: "mx.example.com", "release-idle-memory": "later" }, {}), (error: Error) => error instanceof SettingsError && /^--release-idle-memory: /.test(error.message));
  });

  it("writes the store's per-message rows on their own thread unless --store-writer-thread false", () => {
    assert.equal(loadSettings({ hostname: "mx.example.com" }, {}).storeWriterThread, true);
    assert.equal(loadSettings({ hostname: "mx.example.com", "store-writer-thread": "false" }, {}).storeWriterThread, false);
    assert.equal(loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_STORE_WRITER_THREAD: "false" }).storeWriterThread, false);
    assert.throws(() => loadSettings({ hostname: "mx.example.com", "store-writer-thread": "sometimes" }, {}), (error: Error) => error instanceof SettingsError && /^--store-writer-thread: /.test(error.message));
  });

  it("leaves the signing threads to the pool's default unless --signing-threads gives a number; 0 signs on the SMTP thread", () => {
    assert.equal(loadSettings({ hostname: "mx.example.com" }, {}).signingThreads, null);
    assert.equal(loadSettings({ hostname: "mx.example.com", "signing-threads": "auto" }, {}).signingThreads, null);
    assert.equal(loadSettings({ hostname: "mx.example.com", "signing-threads": "0" }, {}).signingThreads, 0);
    assert.equal(loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_SIGNING_THREADS: "2" }).signingThreads, 2);
    for (const bad of ["-1", "one", "17"]) {
      assert.throws(() => loadSettings({ hostname: "mx.example.com", "signing-threads": bad }, {}), (error: Error) => error instanceof SettingsError && /^--signing-threads: /.test(error.message));
    }
  });
});
