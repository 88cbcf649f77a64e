/**
 * Data at rest (issue 8 item 4): the data directory holds KV values, worker bundles, private
 * forwarding addresses, the activity log, token hashes and keys. After the service or a CLI
 * command has run on it, the directories are 0700 and every file 0600 (a self-signed
 * certificate, which the server shows every client anyway, may stay readable).
 *
 * The test process keeps the common umask 022 on purpose: modes must not depend on the umask
 * that `mailroute` itself sets (the library entry, startMailroute, runs under the caller's).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { startMailroute } from "../../src/cli/start-service.ts";
import { loadSettings } from "../../src/config/settings.ts";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";
import { openStore } from "../../src/store/open-store.ts";
import { lazySecretBox } from "../../src/workers/secret-box.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");

/** Every entry under `dir` with its permission bits, e.g. { ".": "700", "mailroute.sqlite": "600" }. */
function modes(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (path: string) => {
    const stat = statSync(path);
    found[relative(dir, path) || "."] = (stat.mode & 0o777).toString(8);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
  return found;
}

function assertPrivate(dir: string, required: readonly string[]): void {
  const found = modes(dir);
  for (const name of required) assert.ok(name in found, `${name} exists (found: ${Object.keys(found).join(", ")})`);
  for (const [name, mode] of Object.entries(found)) {
    const isDir = statSync(join(dir, name)).isDirectory();
    if (!isDir && name.endsWith("cert.pem")) continue;
    assert.equal(mode, isDir ? "700" : "600", `${name} is ${mode}`);
  }
}

describe("data at rest", () => {
  let dns: TestDnsServer;
  let root: string;
  let previousUmask: number;

  before(async () => {
    previousUmask = process.umask(0o022);
    dns = await startDnsServer();
    root = mkdtempSync(join(tmpdir(), "mailroute-data-at-rest-"));
  });

  after(async () => {
    process.umask(previousUmask);
    await dns?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function start(dataDir: string, logs: { event: string; [field: string]: unknown }[] = []) {
    const logger = createLogger({
      stream: new Writable({
        write(chunk: Buffer, _encoding, callback) {
          logs.push(JSON.parse(chunk.toString("utf8")) as (typeof logs)[number]);
          callback();
        },
      }),
    });
    const settings = loadSettings(
      { "data-dir": dataDir, "smtp-port": "0", "smtp-host": "127.0.0.1", "http-port": "0", "admin-token": "test-admin-token", hostname: "mx.mailroute.test", "dns-servers": dns.address },
      {},
    );
    return startMailroute(settings, { logger, closeTimeoutMs: 500 });
  }

  it("creates a fresh data directory 0700 and the database, its -wal and -shm, keys and secrets 0600", async () => {
    const dataDir = join(root, "fresh", "data");
    const mailroute = await start(dataDir);
    try {
      // what the running service writes on first use: a domain's DKIM keys, the worker secret key
      await new DkimKeyStore({ dir: join(dataDir, "dkim") }).keysFor("example.com");
      lazySecretBox(dataDir).seal("value", "context");
      assertPrivate(dataDir, ["mailroute.sqlite", "mailroute.sqlite-wal", "mailroute.sqlite-shm", "srs-secrets", "worker-secrets.key", "tls/dev-key.pem", "dkim"]);
      assert.ok(readdirSync(join(dataDir, "dkim"), { recursive: true }).length > 0, "DKIM key files were written");
    } finally {
      await mailroute.close();
    }
    assert.equal((statSync(join(root, "fresh")).mode & 0o777).toString(8), "700", "missing parents are created private too");
  });

  it("tightens an existing data directory, database and secret that others can read, and logs each", async () => {
    const dataDir = join(root, "old");
    mkdirSync(dataDir);
    // as an older version left it: world-readable directory and database
    await (await openStore({ dataDir })).close();
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, "mailroute.sqlite"), 0o644);
    writeFileSync(join(dataDir, "srs-secrets"), "an-older-secret\n", { mode: 0o644 });
    chmodSync(join(dataDir, "srs-secrets"), 0o644);
    const logs: { event: string; [field: string]: unknown }[] = [];
    const mailroute = await start(dataDir, logs);
    try {
      assertPrivate(dataDir, ["mailroute.sqlite", "srs-secrets"]);
      const tightened = logs.filter((line) => line.event === "data_permissions_tightened").map((line) => [relative(dataDir, String(line["path"])) || ".", line["from"], line["to"]]);
      assert.deepEqual(tightened, [
        [".", "0755", "0700"],
        ["mailroute.sqlite", "0644", "0600"],
        ["srs-secrets", "0644", "0600"],
      ]);
    } finally {
      await mailroute.close();
    }
  });

  it("keeps a data directory private when mailroute init creates it, through bin/mailroute or the entry point directly", async () => {
    for (const [label, argv] of [
      ["bin", [join(ROOT, "bin", "mailroute.js")]],
      ["entry", [join(ROOT, "src", "cli", "main.ts")]],
    ] as const) {
      const dataDir = join(root, `cli-${label}`);
      await run(process.execPath, [...argv, "init", "--data-dir", dataDir], { timeout: 60_000 });
      assertPrivate(dataDir, ["mailroute.sqlite"]);
    }
  });
});
