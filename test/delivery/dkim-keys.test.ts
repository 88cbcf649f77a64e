import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { DkimKeyStore, type DkimKey } from "../../src/delivery/dkim-keys.ts";

const RACER = fileURLToPath(new URL("./dkim-keys-race-child.ts", import.meta.url));
const made: string[] = [];

after(async () => {
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "mailroute-dkim-"));
  made.push(dir);
  return join(dir, "dkim");
}

/** The tags of a DKIM key record (RFC 6376 §3.6.1), in order. */
function recordTags(value: string): Map<string, string> {
  return new Map(
    value
      .split(";")
      .map((spec) => spec.trim())
      .filter(Boolean)
      .map((spec) => [spec.slice(0, spec.indexOf("=")).trim(), spec.slice(spec.indexOf("=") + 1).trim()] as [string, string]),
  );
}

/** The public key a resolver would build from the record's p= tag. */
function publishedKey(key: DkimKey): KeyObject {
  const p = Buffer.from(recordTags(key.dnsValue).get("p") ?? "", "base64");
  if (key.algorithm === "rsa") return createPublicKey({ key: p, format: "der", type: "spki" });
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: p.toString("base64url") }, format: "jwk" });
}

function signsFor(key: DkimKey, publicKey: KeyObject): boolean {
  const data = Buffer.from("canonicalized header block");
  const hash = key.algorithm === "rsa" ? "sha256" : null;
  return verify(hash, data, publicKey, sign(hash, data, createPrivateKey(key.privateKeyPem)));
}

describe("DkimKeyStore", () => {
  it("generates an RSA-2048 key on first use and hands the same key to a later store on the directory", async () => {
    const dir = await freshDir();
    const first = await new DkimKeyStore({ dir }).keysFor("route.example");

    assert.equal(first.domain, "route.example");
    assert.equal(first.rsa.algorithm, "rsa");
    assert.equal(createPrivateKey(first.rsa.privateKeyPem).asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(first.ed25519, undefined);

    const again = await new DkimKeyStore({ dir }).keysFor("route.example");
    assert.equal(again.rsa.privateKeyPem, first.rsa.privateKeyPem);
  });

  it("keeps each domain's keys apart", async () => {
    const store = new DkimKeyStore({ dir: await freshDir() });
    const [a, b] = await Promise.all([store.keysFor("a.example"), store.keysFor("b.example")]);
    assert.notEqual(a.rsa.privateKeyPem, b.rsa.privateKeyPem);
    assert.equal(a.rsa.dnsName, "mailroute._domainkey.a.example");
    assert.equal(b.rsa.dnsName, "mailroute._domainkey.b.example");
  });

  it("writes key files with mode 0600 in directories with mode 0700, and leaves no temp files", async () => {
    const dir = await freshDir();
    await new DkimKeyStore({ dir, ed25519: true }).keysFor("route.example");

    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, "route.example"))).mode & 0o777, 0o700);
    const files = (await readdir(join(dir, "route.example"))).sort();
    assert.deepEqual(files, ["mailroute-ed.ed25519.pem", "mailroute.rsa.pem"]);
    for (const file of files) assert.equal((await stat(join(dir, "route.example", file))).mode & 0o777, 0o600, file);
  });

  it("publishes a DKIM1 rsa record whose p= is the public half of the signing key", async () => {
    const { rsa } = await new DkimKeyStore({ dir: await freshDir() }).keysFor("route.example");

    const tags = recordTags(rsa.dnsValue);
    assert.deepEqual([...tags.keys()], ["v", "k", "p"]);
    assert.equal(tags.get("v"), "DKIM1"); // RFC 6376 §3.6.1: v= first, exactly DKIM1
    assert.equal(tags.get("k"), "rsa");
    assert.match(tags.get("p") ?? "", /^[A-Za-z0-9+/]+=*$/);
    const published = publishedKey(rsa);
    assert.ok(published.equals(createPublicKey(rsa.privateKeyPem)));
    assert.ok(signsFor(rsa, published));
  });

  it("keeps an Ed25519 key as well when enabled, published as the bare 32-byte key of RFC 8463", async () => {
    const keys = await new DkimKeyStore({ dir: await freshDir(), ed25519: true, ed25519Selector: "ed2026" }).keysFor("route.example");
    const ed25519 = keys.ed25519;
    assert.ok(ed25519);
    assert.equal(ed25519.selector, "ed2026");
    assert.equal(ed25519.dnsName, "ed2026._domainkey.route.example");
    const tags = recordTags(ed25519.dnsValue);
    assert.equal(tags.get("v"), "DKIM1");
    assert.equal(tags.get("k"), "ed25519");
    assert.equal(Buffer.from(tags.get("p") ?? "", "base64").length, 32);
    assert.ok(signsFor(ed25519, publishedKey(ed25519)));
  });

  it("uses the configured selector in the record name", async () => {
    const { rsa } = await new DkimKeyStore({ dir: await freshDir(), selector: "MR2026" }).keysFor("route.example");
    assert.equal(rsa.selector, "mr2026");
    assert.equal(rsa.dnsName, "mr2026._domainkey.route.example");
  });

  it("treats a new selector as a key rotation: a new key, the old one left in place", async () => {
    const dir = await freshDir();
    const old = await new DkimKeyStore({ dir, selector: "s2025" }).keysFor("route.example");
    const rotated = await new DkimKeyStore({ dir, selector: "s2026" }).keysFor("route.example");
    assert.notEqual(rotated.rsa.privateKeyPem, old.rsa.privateKeyPem);
    assert.equal((await new DkimKeyStore({ dir, selector: "s2025" }).keysFor("route.example")).rsa.privateKeyPem, old.rsa.privateKeyPem);
  });

  it("names keys by the IDNA lower-case domain", async () => {
    const store = new DkimKeyStore({ dir: await freshDir() });
    const unicode = await store.keysFor("Bücher.Example.");
    assert.equal(unicode.domain, "xn--bcher-kva.example");
    assert.equal(unicode.rsa.dnsName, "mailroute._domainkey.xn--bcher-kva.example");
    assert.equal((await store.keysFor("XN--BCHER-KVA.example")).rsa.privateKeyPem, unicode.rsa.privateKeyPem);
  });

  it("refuses a name that is not a domain before it can become a path", async () => {
    const dir = await freshDir();
    const store = new DkimKeyStore({ dir });
    for (const bad of ["../etc", "route.example/../../x", "", "a b.example", "[192.0.2.1]"]) {
      await assert.rejects(store.keysFor(bad), { message: `dkim keys for "${bad}": not a domain name` });
    }
    await assert.rejects(stat(dir), { code: "ENOENT" });
  });

  it("loads once per store: later calls share the cached keys", async () => {
    const store = new DkimKeyStore({ dir: await freshDir() });
    const [a, b] = await Promise.all([store.keysFor("route.example"), store.keysFor("ROUTE.example")]);
    assert.equal(a, b);
    assert.equal(await store.keysFor("route.example"), a);
  });

  it("does not cache a failure: the next call tries again", async () => {
    const dir = await freshDir();
    await writeFile(dir, "a file where the key directory should be");
    const store = new DkimKeyStore({ dir });
    await assert.rejects(store.keysFor("route.example"));
    await rm(dir);
    assert.equal((await store.keysFor("route.example")).domain, "route.example");
  });

  it("agrees on one key when stores on the same directory race on first use", async () => {
    const dir = await freshDir();
    const all = await Promise.all(Array.from({ length: 6 }, () => new DkimKeyStore({ dir }).keysFor("route.example")));
    assert.equal(new Set(all.map((keys) => keys.rsa.privateKeyPem)).size, 1);
    assert.deepEqual(await readdir(join(dir, "route.example")), ["mailroute.rsa.pem"]);
    assert.equal(await readFile(join(dir, "route.example", "mailroute.rsa.pem"), "utf8"), all[0]?.rsa.privateKeyPem);
  });

  it("agrees on one key when processes race on first use", async () => {
    const dir = await freshDir();
    const racers = Array.from({ length: 4 }, () => startRacer(dir, "route.example"));
    await Promise.all(racers.map((racer) => racer.ready));
    for (const racer of racers) racer.go();
    const records = await Promise.all(racers.map((racer) => racer.record));

    assert.equal(new Set(records).size, 1);
    assert.equal(records[0], (await new DkimKeyStore({ dir }).keysFor("route.example")).rsa.dnsValue);
    assert.deepEqual(await readdir(join(dir, "route.example")), ["mailroute.rsa.pem"]);
  });

  it("refuses a key file that holds the wrong kind of key, naming the file", async () => {
    const dir = await freshDir();
    const { ed25519 } = await new DkimKeyStore({ dir, ed25519: true, ed25519Selector: "other" }).keysFor("route.example");
    const rsaPath = join(dir, "route.example", "wrong.rsa.pem");
    await writeFile(rsaPath, ed25519?.privateKeyPem ?? "", { mode: 0o600 });
    await assert.rejects(new DkimKeyStore({ dir, selector: "wrong" }).keysFor("route.example"), {
      message: `dkim key ${rsaPath}: holds a ed25519 key, expected rsa`,
    });
  });

  it("gives doctor the TXT records to publish, and nothing secret", async () => {
    const store = new DkimKeyStore({ dir: await freshDir(), ed25519: true });
    const records = await store.publicRecords("route.example");
    const keys = await store.keysFor("route.example");
    assert.deepEqual(records, [
      { type: "TXT", name: "mailroute._domainkey.route.example", value: keys.rsa.dnsValue },
      { type: "TXT", name: "mailroute-ed._domainkey.route.example", value: keys.ed25519?.dnsValue },
    ]);
    assert.doesNotMatch(JSON.stringify(records), /PRIVATE KEY/);
  });

  it("refuses selectors that are not DNS labels, and one selector for two keys", () => {
    assert.throws(() => new DkimKeyStore({ dir: "unused", selector: "bad selector" }), {
      message: 'dkim selector "bad selector": not a DNS label sequence (RFC 6376 §3.1)',
    });
    assert.throws(() => new DkimKeyStore({ dir: "unused", ed25519: true, selector: "k1", ed25519Selector: "K1" }), {
      message: 'dkim selectors: "k1" is configured for both the RSA and the Ed25519 key',
    });
  });
});

function startRacer(dir: string, domain: string) {
  const child = spawn(process.execPath, [RACER, dir, domain], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => (stderr += chunk));
  const exited = once(child, "exit").then(([code]) => {
    if (code !== 0) throw new Error(`racer process exited ${code}: ${stderr}`);
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.startsWith("ready\n")) resolve();
    });
    exited.then(() => reject(new Error(`racer process ended before ready: ${stderr}`)), reject);
  });
  return {
    ready,
    go: () => child.stdin.end("go\n"),
    record: exited.then(() => JSON.parse(stdout.slice("ready\n".length)) as string),
  };
}
