/**
 * mailauth's authenticate() without the code it does not run (src/inbound/mailauth-authenticate.ts):
 * in a fresh process, loading it and authenticating loads neither the BIMI modules nor what only
 * they need (undici, @postalsys/vmc, fast-xml-parser), nor libmime's charset converter (iconv-lite,
 * encoding-japanese) or type list; authentication still answers through a real DNS server on
 * loopback; a BIMI check asked for anyway, or a legacy-charset header parameter, loads the real
 * module and runs it (the stand-ins change when code is loaded, never what it does).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";

const MODULE = pathToFileURL(join(import.meta.dirname, "..", "..", "src", "inbound", "mailauth-authenticate.ts")).href;
// what only BIMI's modules require (their own slots hold the stand-ins until one is called)
const BIMI_ONLY = /\/node_modules\/(?:undici|@postalsys\/vmc|fast-xml-parser)\//;
// what only libmime's charset converter requires
const CHARSET_ONLY = /\/node_modules\/(?:iconv-lite|encoding-japanese)\//;

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
      const loaded = () => Object.keys(cache).filter((path) => ${BIMI_ONLY}.test(path) || ${CHARSET_ONLY}.test(path));
      const { authenticate } = await import(${JSON.stringify(MODULE)});
      const loadedAtStart = loaded();
      const dns = new Resolver();
      dns.setServers([${JSON.stringify(dns.address)}]);
      const message = "From: someone@origin.test\\r\\nTo: user@bench.test\\r\\nSubject: hi\\r\\nContent-Type: text/plain; charset=utf-8\\r\\n\\r\\nhello\\r\\n";
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

  it("loads none of BIMI's modules nor libmime's charset converter, and authenticates through DNS as before", async () => {
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

  it("loads libmime's charset converter and type list on first use, and they answer as the real ones", async () => {
    // the same calls in this process, where libmime loaded as published: the expected answers
    const calls = {
      latin1Parameter: ["parseHeaderValue", "text/plain; name*=iso-8859-1''caf%E9"],
      japaneseWord: ["decodeWords", "=?ISO-2022-JP?B?GyRCJEYkOSRIGyhC?="],
      typeOfPdf: ["detectMimeType", "pdf"],
      extensionOfPng: ["detectExtension", "image/png"],
    } as const;
    // libmime as mailauth resolves it (the probe, in a temporary folder, is given the path)
    const libmimePath = createRequire(createRequire(import.meta.url).resolve("mailauth")).resolve("libmime");
    const libmime = createRequire(import.meta.url)(libmimePath) as Record<string, (value: string) => unknown>;
    const expected = Object.fromEntries(Object.entries(calls).map(([name, [method, argument]]) => [name, libmime[method]!(argument)]));
    assert.deepEqual(expected.latin1Parameter, { value: "text/plain", params: { name: "café" } }, "the reference answer itself");
    assert.equal(expected.japaneseWord, "てすと", "the reference answer itself");

    const script = join(dir, "probe-libmime.mjs");
    writeFileSync(
      script,
      `
      import { createRequire } from "node:module";
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).filter((path) => ${CHARSET_ONLY}.test(path));
      await import(${JSON.stringify(MODULE)});
      const libmime = require(${JSON.stringify(libmimePath)});
      const loadedAtStart = loaded();
      const calls = ${JSON.stringify(calls)};
      const answers = Object.fromEntries(Object.entries(calls).map(([name, [method, argument]]) => [name, libmime[method](argument)]));
      console.log(JSON.stringify({ loadedAtStart, answers, loadedAfter: loaded() }));
      `,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 30_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as { loadedAtStart: string[]; answers: Record<string, unknown>; loadedAfter: string[] };
    assert.deepEqual(result.loadedAtStart, [], "mailauth loaded libmime without its converter");
    assert.deepEqual(result.answers, JSON.parse(JSON.stringify(expected)));
    assert.ok(result.loadedAfter.some((path) => path.includes("/iconv-lite/")), "the real converter was loaded for the legacy charsets");
  });
});
