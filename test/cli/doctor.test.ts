import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CliError } from "../../src/cli/cli-error.ts";
import { doctorCommand } from "../../src/cli/doctor-command.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices, type AccountServices } from "../../src/core/services.ts";
import { mtaStsPolicy } from "../../src/core/zone-dns-records.ts";
import { DkimKeyStore, dkimRecord } from "../../src/delivery/dkim-keys.ts";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { createTestCa, type TestCa, type TestLeaf } from "../support/test-ca.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "mailroute.js");
const HOST = "mx.mailroute.test";
const HOST_ADDRESS = "192.0.2.25";

interface JsonRecord {
  type: string;
  name: string;
  value: string;
  priority?: number;
  status: string;
  published: string[];
  record: string;
  note?: string;
}

interface DoctorRun {
  code: number;
  stdout: string;
  error: CliError | null;
}

let dns: TestDnsServer;
let ca: TestCa;
let mxCert: TestLeaf;
let root: string;
let dataDir: string;
let store: Store;
let service: AccountServices;

before(async () => {
  dns = await startDnsServer();
  // the MX certificate senders will see: valid for HOST, from a CA passed as --ca-file
  ca = createTestCa();
  mxCert = ca.issue("mx", [HOST], { days: 30 });
  root = await mkdtemp(join(tmpdir(), "mailroute-doctor-"));
  dataDir = join(root, "data");
  store = await openStore({ dataDir });
  service = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
  for (const zone of ["new.example", "good.example", "broken.example", "tricky.example", "keys.example"]) await service.zones.create(zone);
  // our MX host, shared by every zone
  dns.setRecords(HOST, "A", [HOST_ADDRESS]);
  dns.setRecords(HOST, "TXT", ["v=spf1 a -all"]);
});

after(async () => {
  ca?.remove();
  await store?.close();
  await dns?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

let certificateFlags = (): string[] => ["--tls-cert", mxCert.certFile, "--tls-key", mxCert.keyFile, "--ca-file", ca.certFile];

/** Runs the command in-process, as main() would, with a capturing Output. */
async function doctor(...args: string[]): Promise<DoctorRun> {
  const lines: string[] = [];
  try {
    await doctorCommand([...args, "--data-dir", dataDir, "--hostname", HOST, "--dns-servers", dns.address, ...certificateFlags()], { out: (line) => lines.push(line) });
    return { code: 0, stdout: lines.join("\n"), error: null };
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return { code: error.exitCode, stdout: lines.join("\n"), error };
  }
}

async function doctorJson(zone: string, ...args: string[]): Promise<{ code: number; records: JsonRecord[]; certificates: JsonRecord[] }> {
  const result = await doctor(zone, "--json", ...args);
  const all = JSON.parse(result.stdout) as JsonRecord[];
  return { code: result.code, records: all.filter((record) => record.type !== "TLS"), certificates: all.filter((record) => record.type === "TLS") };
}

function byName(records: readonly JsonRecord[], type: string, name: string): JsonRecord {
  const found = records.find((record) => record.type === type && record.name === name);
  assert.ok(found, `no ${type} record for ${name} in ${records.map((r) => `${r.type} ${r.name}`).join(", ")}`);
  return found;
}

/** The key the signer will use for the zone: the same directory and selector as a server's. */
async function dkimFromKeyStore(zone: string, options: { selector?: string; ed25519?: boolean } = {}) {
  return new DkimKeyStore({ dir: join(dataDir, "dkim"), ...options }).publicRecords(zone);
}

function otherDkimKey(): string {
  return dkimRecord("rsa", generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey);
}

async function zoneStatus(zone: string): Promise<string> {
  return (await service.zones.get(zone)).status;
}

/** A correct zone in the operator's own words: not doctor's spelling, but what receivers accept. */
async function publishCorrectZone(zone: string): Promise<void> {
  dns.setRecords(zone, "MX", [{ exchange: HOST, priority: 10 }]);
  dns.setRecords(zone, "TXT", ["google-site-verification=abc123", `v=spf1 include:_spf.google.com a:${HOST} -all`]);
  const [dkim] = await dkimFromKeyStore(zone);
  dns.setRecords(dkim!.name, "TXT", [dkim!.value]);
  dns.setRecords(`_dmarc.${zone}`, "TXT", [`v=DMARC1; p=reject; rua=mailto:postmaster@${zone}`]);
  dns.setRecords(`_mta-sts.${zone}`, "TXT", [`v=STSv1; id=${mtaStsPolicy(HOST).id};`]);
  // an A record with our address serves the policy host as well as a CNAME would
  dns.setRecords(`mta-sts.${zone}`, "A", [HOST_ADDRESS]);
  dns.setRecords(`_smtp._tls.${zone}`, "TXT", [`v=TLSRPTv1; rua=mailto:tls@${zone}`]);
}

describe("mailroute doctor", () => {
  it("prints every record a new zone needs, the DKIM key included before any mail was forwarded, and accepts them once published", async () => {
    const keyFile = join(dataDir, "dkim", "new.example", "mailroute.rsa.pem");
    assert.equal(existsSync(keyFile), false, "no key yet: no mail was forwarded");

    const first = await doctorJson("new.example");
    assert.equal(first.code, 1);
    // the host's own SPF record is shared by every zone and published already
    assert.deepEqual(first.records.map((record) => record.status), first.records.map((record) => (record.name === HOST ? "ok" : "missing")));
    assert.ok(existsSync(keyFile), "doctor generated the key the signer will use");
    const [dkim] = await dkimFromKeyStore("new.example");
    assert.equal(byName(first.records, "TXT", "mailroute._domainkey.new.example").value, dkim!.value);
    assert.equal(await zoneStatus("new.example"), "misconfigured");

    // publish exactly what doctor said, grouped into RRsets
    const rrsets = new Map<string, JsonRecord[]>();
    for (const record of first.records) rrsets.set(`${record.type} ${record.name}`, [...(rrsets.get(`${record.type} ${record.name}`) ?? []), record]);
    for (const records of rrsets.values()) {
      const { type, name } = records[0]!;
      if (type === "MX") dns.setRecords(name, "MX", records.map((r) => ({ exchange: r.value, priority: r.priority! })));
      else if (type === "TXT") dns.setRecords(name, "TXT", records.map((r) => r.value));
      else dns.setRecords(name, "CNAME", records.map((r) => r.value));
    }

    const second = await doctor("new.example");
    assert.equal(second.code, 0, second.error?.message);
    assert.match(second.stdout, /new\.example is ready: every record is published/);
    assert.doesNotMatch(second.stdout, /NEEDS ACTION/);
    assert.equal(await zoneStatus("new.example"), "ready");
  });

  it("reports a correct zone as all ok, exits 0 and marks the zone ready", async () => {
    await publishCorrectZone("good.example");
    const result = await doctor("good.example");
    assert.equal(result.code, 0, result.error?.message);
    assert.match(result.stdout, /^OK \(8 of 8\)$/m);
    assert.doesNotMatch(result.stdout, /NEEDS ACTION|MISSING|WRONG/);
    for (const name of ["good.example", HOST, "mailroute._domainkey.good.example", "_dmarc.good.example", "_mta-sts.good.example", "mta-sts.good.example", "_smtp._tls.good.example"]) {
      assert.match(result.stdout, new RegExp(`^  OK +(MX|TXT|CNAME) +${name.replaceAll(".", "\\.")} `, "m"));
    }
    assert.equal(await zoneStatus("good.example"), "ready");
  });

  it("prints --json as a list of {type, name, value, priority?, status} with fully qualified names", async () => {
    const { code, records } = await doctorJson("good.example");
    assert.equal(code, 0);
    assert.ok(Array.isArray(records));
    assert.deepEqual(
      records.map((record) => `${record.type} ${record.name}`).sort(),
      [
        "CNAME mta-sts.good.example",
        "MX good.example",
        "TXT _dmarc.good.example",
        "TXT _mta-sts.good.example",
        "TXT _smtp._tls.good.example",
        "TXT good.example",
        "TXT mailroute._domainkey.good.example",
        `TXT ${HOST}`,
      ].sort(),
    );
    for (const record of records) {
      assert.ok(["MX", "TXT", "CNAME"].includes(record.type), record.type);
      assert.ok(record.name === HOST || record.name.endsWith(".good.example") || record.name === "good.example", record.name);
      assert.doesNotMatch(record.name, /\.$/);
      assert.equal(typeof record.value, "string");
      assert.equal(record.status, "ok");
      assert.equal("priority" in record, record.type === "MX", `priority only on MX (${record.type} ${record.name})`);
    }
    const mx = byName(records, "MX", "good.example");
    assert.deepEqual({ value: mx.value, priority: mx.priority }, { value: HOST, priority: 10 });
  });

  it("reports each problem of a broken zone with its status and the exact value to publish, exits 1 and marks it misconfigured", async () => {
    const zone = "broken.example";
    await publishCorrectZone(zone);
    dns.setRecords(`mta-sts.${zone}`, "A", []);
    dns.setRecords(`mta-sts.${zone}`, "CNAME", [HOST]);
    dns.setRecords(zone, "MX", [{ exchange: "mx.old-provider.test", priority: 10 }]);
    dns.setRecords(zone, "TXT", ["google-site-verification=abc123"]);
    const [dkim] = await dkimFromKeyStore(zone);
    dns.setRecords(dkim!.name, "TXT", [otherDkimKey()]);
    dns.setRecords(`_dmarc.${zone}`, "TXT", []);
    dns.setRecords(`_mta-sts.${zone}`, "TXT", ["v=STSv1; id=20190101000000"]);
    await service.zones.setStatus(zone, "ready");

    const { code, records } = await doctorJson(zone);
    assert.equal(code, 1);
    const statuses = Object.fromEntries(records.map((record) => [`${record.type} ${record.name}`, record.status]));
    assert.deepEqual(statuses, {
      [`MX ${zone}`]: "wrong",
      [`TXT ${zone}`]: "missing",
      [`TXT ${HOST}`]: "ok",
      [`TXT mailroute._domainkey.${zone}`]: "wrong",
      [`TXT _dmarc.${zone}`]: "missing",
      [`TXT _mta-sts.${zone}`]: "wrong",
      [`CNAME mta-sts.${zone}`]: "ok",
      [`TXT _smtp._tls.${zone}`]: "ok",
    });
    const mx = byName(records, "MX", zone);
    assert.deepEqual([mx.value, mx.priority, mx.published], [HOST, 10, ["10 mx.old-provider.test"]]);
    assert.equal(byName(records, "TXT", zone).value, `v=spf1 a:${HOST} ~all`);
    assert.equal(byName(records, "TXT", `mailroute._domainkey.${zone}`).value, dkim!.value);
    assert.equal(byName(records, "TXT", `_dmarc.${zone}`).value, `v=DMARC1; p=none; rua=mailto:dmarc-reports@${zone}`);
    const sts = byName(records, "TXT", `_mta-sts.${zone}`);
    assert.deepEqual([sts.value, sts.published], [`v=STSv1; id=${mtaStsPolicy(HOST).id}`, ["v=STSv1; id=20190101000000"]]);
    assert.equal(await zoneStatus(zone), "misconfigured");

    const human = await doctor(zone);
    assert.equal(human.code, 1);
    assert.equal(human.error?.message, `5 of 8 DNS records for ${zone} need action`);
    assert.match(human.error?.hint ?? "", /publish the records shown, then run "mailroute doctor broken\.example" again/);
    const out = human.stdout;
    assert.ok(out.indexOf("NEEDS ACTION (5 of 8)") < out.indexOf("OK (3 of 8)"), out);
    // each problem is followed by the zone-file line to publish
    assert.match(out, /^ {2}WRONG +MX +broken\.example .*\n.*now: +10 mx\.old-provider\.test\n.*why: .*\n.*publish: broken\.example\. 3600 IN MX 10 mx\.mailroute\.test\.$/m);
    assert.match(out, /publish: broken\.example\. 3600 IN TXT "v=spf1 a:mx\.mailroute\.test ~all"$/m);
    assert.match(out, /publish: _dmarc\.broken\.example\. 3600 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@broken\.example"$/m);
    assert.match(out, new RegExp(`publish: _mta-sts\\.broken\\.example\\. 3600 IN TXT "v=STSv1; id=${mtaStsPolicy(HOST).id}"$`, "m"));
    // the DKIM record is longer than one character-string: quoted pieces of at most 255 bytes
    const dkimLine = /publish: mailroute\._domainkey\.broken\.example\. 3600 IN TXT (.*)$/m.exec(out)?.[1];
    assert.ok(dkimLine, out);
    const pieces = [...dkimLine.matchAll(/"([^"]*)"/g)].map((match) => match[1]!);
    assert.ok(pieces.length >= 2 && pieces.every((piece) => piece.length <= 255), dkimLine);
    assert.equal(pieces.join(""), dkim!.value);
  });

  it("judges records the way receivers read them: MX preference, one SPF keeping the operator's senders, duplicates, the policy host's addresses", async () => {
    const zone = "tricky.example";
    await publishCorrectZone(zone);
    dns.setRecords(zone, "MX", [{ exchange: "mx.old-provider.test", priority: 5 }, { exchange: `${HOST}.`, priority: 10 }]);
    dns.setRecords(zone, "TXT", ["v=spf1 include:_spf.google.com ~all"]);
    dns.setRecords(`_dmarc.${zone}`, "TXT", ["v=DMARC1; p=none", "v=DMARC1; p=reject"]);
    dns.setRecords(`mta-sts.${zone}`, "A", ["198.51.100.7"]);
    dns.setRecords(HOST, "TXT", ["v=spf1 ip4:192.0.2.0/24 -all"]);
    try {
      const { code, records } = await doctorJson(zone);
      assert.equal(code, 1);
      const mx = byName(records, "MX", zone);
      assert.equal(mx.status, "wrong");
      assert.match(mx.note ?? "", /senders try 5 mx\.old-provider\.test first/);
      const spf = byName(records, "TXT", zone);
      assert.equal(spf.status, "wrong");
      assert.equal(spf.value, `v=spf1 a:${HOST} include:_spf.google.com ~all`, "our mechanism added, the operator's senders kept");
      const dmarc = byName(records, "TXT", `_dmarc.${zone}`);
      assert.equal(dmarc.status, "wrong");
      assert.match(dmarc.note ?? "", /2 records of this kind/);
      const policyHost = byName(records, "CNAME", `mta-sts.${zone}`);
      assert.deepEqual([policyHost.status, policyHost.published], ["wrong", ["198.51.100.7"]]);
      assert.equal(byName(records, "TXT", HOST).status, "ok", "an ip4 range covering the host's address passes it");
    } finally {
      dns.setRecords(HOST, "TXT", ["v=spf1 a -all"]);
    }
  });

  it("reports a record whose lookup fails with SERVFAIL as unknown, exits 1 and leaves a ready zone ready", async () => {
    await publishCorrectZone("good.example");
    assert.equal((await doctor("good.example")).code, 0);
    dns.failWith("_dmarc.good.example", "SERVFAIL");
    try {
      const { code, records } = await doctorJson("good.example");
      assert.equal(code, 1);
      const dmarc = byName(records, "TXT", "_dmarc.good.example");
      assert.equal(dmarc.status, "unknown");
      assert.match(dmarc.note ?? "", /ESERVFAIL/);
      assert.deepEqual(records.filter((record) => record !== dmarc).map((record) => record.status), records.slice(1).map(() => "ok"));
      const human = await doctor("good.example");
      assert.equal(human.code, 1);
      assert.match(human.stdout, /^NOT CHECKED \(1 of 8\)\n {2}UNKNOWN +TXT +_dmarc\.good\.example /m);
      assert.doesNotMatch(human.stdout, /NEEDS ACTION/);
      assert.match(human.error?.message ?? "", /1 of 8 DNS records for good\.example could not be checked/);
      assert.equal(await zoneStatus("good.example"), "ready", "a failed lookup proves nothing either way");
    } finally {
      dns.failWith("_dmarc.good.example", null);
    }
  });

  it("publishes the key records for the configured selector, and the Ed25519 key when --dkim-ed25519 is on", async () => {
    const { records } = await doctorJson("keys.example");
    assert.ok(records.some((record) => record.name === "mailroute._domainkey.keys.example"));
    const result = await doctor("keys.example", "--json", "--dkim-selector", "s2026", "--dkim-ed25519", "true");
    const rotated = (JSON.parse(result.stdout) as JsonRecord[]).filter((record) => record.type !== "TLS");
    const [rsa, ed25519] = await dkimFromKeyStore("keys.example", { selector: "s2026", ed25519: true });
    assert.equal(byName(rotated, "TXT", "s2026._domainkey.keys.example").value, rsa!.value);
    assert.equal(byName(rotated, "TXT", "mailroute-ed._domainkey.keys.example").value, ed25519!.value);
    assert.match(ed25519!.value, /k=ed25519/);
    assert.ok(!rotated.some((record) => record.name === "mailroute._domainkey.keys.example"), "only the configured selector's record");
  });

  it("refuses a domain that is not a zone with a hint, without making it a key", async () => {
    const unknown = await doctor("nowhere.example");
    assert.equal(unknown.code, 1);
    assert.equal(unknown.error?.message, "nowhere.example is not a domain routed here");
    assert.match(unknown.error?.hint ?? "", /mailroute domain add nowhere\.example/);
    assert.equal(existsSync(join(dataDir, "dkim", "nowhere.example")), false);

    for (const args of [[], ["not a domain"], ["a.example", "b.example"], ["good.example", "--frobnicate"]]) {
      const usage = await doctor(...args);
      assert.equal(usage.code, 2, `usage error for ${JSON.stringify(args)}`);
      assert.match(usage.error?.hint ?? "", /^usage: mailroute doctor <domain>/);
    }
    const badServers = await doctorCommand(["good.example", "--data-dir", dataDir, "--hostname", HOST, "--dns-servers", "resolver.example"], { out: () => {} }).then(
      () => null,
      (error: unknown) => error as CliError,
    );
    assert.equal(badServers?.exitCode, 2);
    assert.match(badServers?.message ?? "", /--dns-servers "resolver\.example"/);
  });

  it("runs as the mailroute command, with settings from MAILROUTE_ variables", async () => {
    await publishCorrectZone("good.example");
    const env = { ...process.env, MAILROUTE_DATA_DIR: dataDir, MAILROUTE_HOSTNAME: HOST, MAILROUTE_DNS_SERVERS: dns.address, MAILROUTE_TLS_CERT: mxCert.certFile, MAILROUTE_TLS_KEY: mxCert.keyFile, MAILROUTE_CA_FILE: ca.certFile };
    const cli = async (...args: string[]) =>
      run(process.execPath, [BIN, "doctor", ...args], { env, timeout: 30_000 }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, stdout: error.stdout ?? "", stderr: error.stderr ?? "" }),
      );
    const good = await cli("good.example", "--json");
    assert.equal(good.code, 0, good.stderr);
    assert.deepEqual(new Set((JSON.parse(good.stdout) as JsonRecord[]).map((record) => record.status)), new Set(["ok"]));
    const broken = await cli("broken.example");
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /publish: broken\.example\. 3600 IN MX 10 mx\.mailroute\.test\./);
    assert.match(broken.stderr, /mailroute doctor: 5 of 8 DNS records for broken\.example need action/);
    const unknown = await cli("nowhere.example");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nowhere\.example is not a domain routed here\nadd it first: mailroute domain add nowhere\.example/);
  });

  it("refuses to propose records for a host name that is not fully qualified, saying how to fix it", async () => {
    const lines: string[] = [];
    const failure = await doctorCommand(["good.example", "--data-dir", dataDir, "--hostname", "vm", "--dns-servers", dns.address], { out: (line) => lines.push(line) }).then(
      () => null,
      (error: unknown) => error as CliError,
    );
    assert.equal(failure?.exitCode, 2);
    assert.match(failure?.message ?? "", /^--hostname: "vm" is not a fully qualified domain name .*doctor proposes no records for it/);
    assert.match(failure?.hint ?? "", /pass --hostname mx\.good\.example \(or MAILROUTE_HOSTNAME\)/);
    assert.deepEqual(lines, [], "nothing printed to publish");
  });

  it("checks the MX certificate before the MTA-STS record: valid one reported ok with its expiry", async () => {
    await publishCorrectZone("good.example");
    const { code, certificates } = await doctorJson("good.example");
    assert.equal(code, 0);
    assert.equal(certificates.length, 1);
    assert.deepEqual([certificates[0]!.name, certificates[0]!.status], [HOST, "ok"]);
    assert.match(certificates[0]!.note ?? "", /valid until \d{4}-\d\d-\d\d, issued by .*mailroute Test CA/);
  });

  it("holds the MTA-STS record while the MX certificate is self-signed, and never says to publish it", async () => {
    const zone = "selfsigned.example";
    await service.zones.create(zone);
    const selfSigned = ca.selfSigned("self", [HOST]);
    const saved = certificateFlags;
    certificateFlags = () => ["--tls-cert", selfSigned.certFile, "--tls-key", selfSigned.keyFile, "--ca-file", ca.certFile];
    try {
      await publishCorrectZone(zone);
      dns.setRecords(`_mta-sts.${zone}`, "TXT", []);
      const { code, records, certificates } = await doctorJson(zone);
      assert.equal(code, 1);
      assert.deepEqual([certificates[0]!.status], ["wrong"]);
      assert.match(certificates[0]!.note ?? "", /self-signed.*--acme-directory letsencrypt/);
      const sts = byName(records, "TXT", `_mta-sts.${zone}`);
      assert.equal(sts.status, "held");
      assert.match(sts.note ?? "", /publish once the certificate of mx\.mailroute\.test validates/);
      // the policy it would publish later is served as testing meanwhile
      assert.equal(sts.value, `v=STSv1; id=${mtaStsPolicy(HOST, "testing").id}`);
      const human = await doctor(zone);
      assert.equal(human.code, 1);
      assert.equal(human.error?.message, `1 of 1 certificates for ${zone} need action`);
      assert.match(human.stdout, /^ {2}WRONG +TLS +mx\.mailroute\.test +MX STARTTLS certificate/m);
      assert.match(human.stdout, /^WAITING FOR VALID CERTIFICATES \(1 of 8\)\n {2}HELD +TXT +_mta-sts\.selfsigned\.example /m);
      assert.doesNotMatch(human.stdout, /publish: _mta-sts/, "never told to publish the MTA-STS record");

      // --mta-sts-mode enforce with that certificate: an enforce record already published must go
      dns.setRecords(`_mta-sts.${zone}`, "TXT", [`v=STSv1; id=${mtaStsPolicy(HOST, "enforce").id}`]);
      const enforced = await doctorJson(zone, "--mta-sts-mode", "enforce");
      const published = byName(enforced.records, "TXT", `_mta-sts.${zone}`);
      assert.equal(published.status, "wrong");
      assert.match(published.note ?? "", /senders that apply it refuse your mail\. Remove this record now/);
      assert.equal(published.record, null, "nothing to publish");
    } finally {
      certificateFlags = saved;
    }
  });
});
