/**
 * src/smtp/smtp-server-package.ts: smtp-server from its CommonJS build, the classes the shims
 * patch being the ones SMTPServer runs, and a started service that never loads Node's bundled
 * fetch implementation (undici: +13 MiB of RSS when smtp-server's ES build pulled it in through
 * nodemailer 10's `import http from "node:http"`; issue 11).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { SMTPConnection, SMTPServer, SMTPStream } from "../../src/smtp/smtp-server-package.ts";

const run = promisify(execFile);
const require = createRequire(import.meta.url);

describe("smtp-server, as the service loads it", () => {
  it("is the CommonJS build, whose SMTPConnection and SMTPStream are the ones the shims patch", () => {
    assert.equal(SMTPServer, (require("smtp-server") as { SMTPServer: unknown }).SMTPServer);
    assert.equal(SMTPConnection, (require("smtp-server/lib/smtp-connection.js") as { SMTPConnection: unknown }).SMTPConnection);
    assert.equal(SMTPStream, (require("smtp-server/lib/smtp-stream.js") as { SMTPStream: unknown }).SMTPStream);
  });

  it("leaves Node's bundled fetch (undici) unloaded in a started service", async () => {
    const root = await mkdtemp(join(tmpdir(), "mailroute-undici-"));
    try {
      const url = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
      const script = `
        import { silentLogger } from ${url("../../src/analytics/structured-log.ts")};
        import { startMailroute } from ${url("../../src/cli/start-service.ts")};
        import { loadSettings } from ${url("../../src/config/settings.ts")};
        const settings = loadSettings({ "data-dir": ${JSON.stringify(join(root, "data"))}, "smtp-host": "127.0.0.1", "smtp-port": "0", "http-host": "127.0.0.1", "http-port": "0", hostname: "mx.undici.test", "admin-token": "${"t".repeat(32)}" }, {});
        const service = await startMailroute(settings, { logger: silentLogger, closeTimeoutMs: 1000 });
        const loaded = process.moduleLoadList.filter((name) => name.includes("undici"));
        await service.close();
        console.log(JSON.stringify({ started: true, loaded }));
      `;
      const file = join(root, "probe.mts");
      await writeFile(file, script);
      const { stdout } = await run(process.execPath, [file], { encoding: "utf8", timeout: 60_000 });
      assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1)!), { started: true, loaded: [] });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
