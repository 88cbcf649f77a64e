/**
 * mailauth's authenticate() without its BIMI modules (src/inbound/mailauth-authenticate.ts): in
 * a fresh process, loading it loads neither the BIMI modules nor what only they need (undici,
 * @postalsys/vmc, fast-xml-parser), authentication still answers through a real DNS server on
 * loopback, and a BIMI check asked for anyway loads the real module and runs it (the stand-in
 * changes when code is loaded, never what it does).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

const MODULE = pathToFileURL(join(import.meta.dirname, "..", "..", "src", "inbound", "mailauth-authenticate.ts")).href;
// what only BIMI's modules require (their own slots hold the stand-ins until one is called)
const BIMI_ONLY = /\/node_modules\/(?:undici|@postalsys\/vmc|fast-xml-parser)\//;

interface Run {
  loadedAtStart: string[];
  spf: string;
  dmarc: string;
  bimi: string | null;
  loadedAfter: string[];
}

describe("mailauth's authenticate() without BIMI loaded", () => {
  let dns: TestDnsServer;
  let dir: string;

  before(async () => {
    dns = await startDnsServer();
    dns.setRecords("origin.test", "TXT", ["v=spf1 ip4:192.0.2.0/24 -all"]);
    dns.setRecords("_dmarc.origin.test", "TXT", ["v=DMARC1; p=reject"]);
    dir = mkdtempSync(join(tmpdir(), "mailroute-mailauth-"));
  });
  after(async () => {
    await dns.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(disableBimi: boolean): Promise<Run> {
    const script = join(dir, `probe-${disableBimi}.mjs`);
    writeFileSync(
      script,
      `
      import { createRequire } from "node:module";
      import { Resolver } from "node:dns/promises";
      const cache = createRequire(import.meta.url).cache;
      const loaded = () => Object.keys(cache).filter((path) => ${BIMI_ONLY}.test(path));
      const { authenticate } = await import(${JSON.stringify(MODULE)});
      const loadedAtStart = loaded();
      const dns = new Resolver();
      dns.setServers([${JSON.stringify(dns.address)}]);
      const message = "From: someone@origin.test\\r\\nTo: user@bench.test\\r\\nSubject: hi\\r\\n\\r\\nhello\\r\\n";
      const result = await authenticate(Buffer.from(message), {
        ip: "192.0.2.1", helo: "client.origin.test", sender: "someone@origin.test", mta: "mx.mailroute.test",
        resolver: (name, type) => dns.resolve(name, type), disableBimi: ${disableBimi},
      });
      console.log(JSON.stringify({ loadedAtStart, spf: result.spf.status.result, dmarc: result.dmarc.status.result, bimi: result.bimi ? result.bimi.status.result : null, loadedAfter: loaded() }));
      `,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 30_000 });
    return JSON.parse(stdout.trim().split("\n").at(-1)!) as Run;
  }

  it("loads none of BIMI's modules, and authenticates through DNS as before", async () => {
    const result = await run(true);
    assert.deepEqual(result.loadedAtStart, []);
    assert.equal(result.spf, "pass");
    assert.equal(result.dmarc, "pass");
    assert.equal(result.bimi, null);
    assert.deepEqual(result.loadedAfter, []);
  });

  it("runs the real BIMI check if one is asked for, loading it then", async () => {
    const result = await run(false);
    assert.deepEqual(result.loadedAtStart, []);
    assert.equal(result.dmarc, "pass");
    // no BIMI record published: mailauth's own verdict, reached through the real module
    assert.equal(result.bimi, "none");
    assert.ok(result.loadedAfter.some((path) => path.includes("/undici/")), "the real BIMI module was loaded, and undici with it");
  });
});
