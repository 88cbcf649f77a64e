/**
 * Optional subsystems are loaded when used, not at start (issue 11, RSS): a SQLite node without
 * ACME never loads pg or acme-client; the HTTP API's app (Fastify and its routes) comes with the
 * first request other than a health check, and graphql-js with the first GraphQL query, which
 * still answers; nodemailer's MIME composer with the first verification message; selfsigned never
 * in the service's thread: the dev certificate is made on a
 * short-lived thread of its own, once, and the one kept in the data directory is reused; mailauth's
 * BIMI code, libmime's charset converter and joi (src/inbound/mailauth-stand-ins.ts) are not loaded by
 * a start, though both the inbound authentication and the MTA-STS policy code load mailauth. Observed
 * in child processes through a resolve hook (test/support/loaded-packages-process.ts).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

const PROBE = join(import.meta.dirname, "..", "support", "loaded-packages-process.ts");

interface ProbeRun {
  atStart: string[];
  afterHealth: string[];
  ready: { status: number; body: { success: boolean; result: { status: string } } };
  afterGraphql: string[];
  graphql: { status: number; body: { data: unknown; errors: unknown } };
}

async function probe(dataDir: string): Promise<ProbeRun> {
  const { stdout } = await promisify(execFile)(process.execPath, [PROBE, dataDir], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as ProbeRun;
}

describe("optional subsystems", () => {
  let dataDir: string;
  let first: ProbeRun;
  let second: ProbeRun;
  const certificates: string[] = [];

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "mailroute-optional-"));
    first = await probe(dataDir);
    certificates.push(readFileSync(join(dataDir, "tls", "dev-cert.pem"), "utf8"));
    second = await probe(dataDir);
    certificates.push(readFileSync(join(dataDir, "tls", "dev-cert.pem"), "utf8"));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("sees the packages a start loads (the hook works)", () => {
    for (const name of ["kysely", "smtp-server", "mailauth"]) assert.ok(first.atStart.includes(name), `${name} loaded at start`);
  });

  it("starts without the HTTP API's app, answers a health check without it, and loads it for the first API request", () => {
    for (const run of [first, second]) {
      for (const name of ["fastify", "@fastify/static", "ajv"]) assert.ok(!run.atStart.includes(name), `${name} loaded at start`);
      assert.equal(run.ready.status, 200);
      assert.equal(run.ready.body.result.status, "ready");
      assert.ok(!run.afterHealth.includes("fastify"), "a health check loaded fastify");
      assert.ok(run.afterGraphql.includes("fastify"), "the API request loaded fastify");
    }
  });

  it("starts a SQLite node without ACME with neither pg nor acme-client nor graphql loaded", () => {
    for (const run of [first, second]) {
      for (const name of ["pg", "acme-client", "graphql"]) assert.ok(!run.atStart.includes(name), `${name} loaded at start`);
    }
  });

  it("starts without nodemailer's MIME composer, which only verification messages use", () => {
    assert.ok(first.atStart.includes("nodemailer"), "nodemailer itself is loaded (the relay's SMTP client)");
    for (const run of [first, second]) assert.ok(!run.atStart.includes("nodemailer/lib/mail-composer"), "the MIME composer loaded at start");
  });

  it("starts without mailauth's BIMI code, libmime's charset converter and type list, or joi", () => {
    for (const run of [first, second]) {
      for (const name of ["undici", "@postalsys/vmc", "fast-xml-parser", "iconv-lite", "encoding-japanese", "joi"]) assert.ok(!run.atStart.includes(name), `${name} loaded at start`);
      assert.ok(run.atStart.includes("libmime"), "libmime itself is loaded (the hook saw it)");
    }
  });

  it("loads graphql-js at the first GraphQL query, which answers", () => {
    assert.ok(first.afterGraphql.includes("graphql"));
    assert.equal(first.graphql.status, 200);
    assert.deepEqual(first.graphql.body, { data: { viewer: { zones: [] } }, errors: null });
  });

  it("makes the dev certificate once, off the service's thread (selfsigned never loads there), and reuses it", () => {
    assert.match(certificates[0]!, /^-----BEGIN CERTIFICATE-----/);
    assert.equal(certificates[1], certificates[0], "the second start reused the first one's certificate");
    for (const run of [first, second]) assert.ok(!run.atStart.includes("selfsigned") && !run.atStart.includes("@peculiar/x509"), "selfsigned loaded in the service's thread");
  });
});
