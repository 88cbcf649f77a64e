import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { ClusterKeyError, parseClusterKey } from "../../src/config/cluster-key.ts";
import { checkClusterKey, createSealedSecretStore } from "../../src/store/sealed-secret-store.ts";
import { importSecretFiles } from "../../src/store/secret-file-import.ts";
import { forEachDatabase } from "../support/store-fixtures.ts";

const key = parseClusterKey(randomBytes(32).toString("base64"), "test");
const otherKey = parseClusterKey(randomBytes(32).toString("base64"), "test");

forEachDatabase((target) => {
  it("creates a secret once: nodes racing to create it all get the first one stored", async () => {
    const stores = await Promise.all([target.open(), target.open(), target.open()]);
    const values = await Promise.all(stores.map((store, index) => createSealedSecretStore(store.db, key).getOrCreate("srs-secrets", () => `secret-${index}\n`)));
    assert.equal(new Set(values).size, 1, values.join(" | "));
    assert.match(values[0]!, /^secret-[012]\n$/);
    const rows = await stores[0]!.db.selectFrom("cluster_secrets").selectAll().execute();
    assert.equal(rows.length, 1);
    // and later calls never generate again
    assert.equal(await createSealedSecretStore(stores[1]!.db, key).getOrCreate("srs-secrets", () => "never"), values[0]);
  });

  it("stores only ciphertext, with a fresh IV per value and the key id beside it", async () => {
    const { db } = await target.open();
    const sealed = createSealedSecretStore(db, key);
    await sealed.getOrCreate("dkim/a.example/mailroute.rsa.pem", () => "-----BEGIN PRIVATE KEY-----same");
    await sealed.getOrCreate("dkim/b.example/mailroute.rsa.pem", () => "-----BEGIN PRIVATE KEY-----same");
    const rows = await db.selectFrom("cluster_secrets").selectAll().orderBy("name").execute();
    assert.deepEqual(rows.map((row) => row.key_id), [key.id, key.id]);
    for (const row of rows) assert.doesNotMatch(Buffer.from(row.sealed, "base64url").toString("latin1"), /PRIVATE KEY|same/);
    assert.notEqual(rows[0]!.sealed.slice(0, 16), rows[1]!.sealed.slice(0, 16), "the IVs differ");
  });

  it("refuses another cluster key by naming both ids, never returning garbage", async () => {
    const { db } = await target.open();
    await createSealedSecretStore(db, key).getOrCreate("srs-secrets", () => "mine\n");
    await assert.rejects(createSealedSecretStore(db, otherKey).getOrCreate("srs-secrets", () => "theirs\n"), (error: Error) => {
      assert.ok(error instanceof ClusterKeyError);
      assert.ok(error.message.includes(key.id) && error.message.includes(otherKey.id), error.message);
      return true;
    });
    await assert.rejects(checkClusterKey(db, otherKey), ClusterKeyError);
    await checkClusterKey(db, key);
  });

  it("binds a value to its name: a sealed row copied to another name does not open", async () => {
    const { db } = await target.open();
    await createSealedSecretStore(db, key).getOrCreate("srs-secrets", () => "mine\n");
    const row = await db.selectFrom("cluster_secrets").selectAll().where("name", "=", "srs-secrets").executeTakeFirstOrThrow();
    await db.insertInto("cluster_secrets").values({ ...row, name: "worker-secrets.key" }).execute();
    await assert.rejects(createSealedSecretStore(db, key).getOrCreate("worker-secrets.key", () => "x"), /worker-secrets\.key.*does not authenticate/);
  });

  it("imports a node's key files into an empty cluster only, by name", async () => {
    const { db } = await target.open();
    const dir = mkdtempSync(join(tmpdir(), "mailroute-import-"));
    try {
      writeFileSync(join(dir, "srs-secrets"), "old-srs\n");
      mkdirSync(join(dir, "dkim", "a.example"), { recursive: true });
      writeFileSync(join(dir, "dkim", "a.example", "mailroute.rsa.pem"), "PEM");
      writeFileSync(join(dir, "dkim", "a.example", "mailroute.rsa.pem.tmp-1-ab"), "half-written");
      const sealed = createSealedSecretStore(db, key);
      assert.deepEqual(await importSecretFiles(db, sealed, dir), ["srs-secrets", "dkim/a.example/mailroute.rsa.pem"]);
      assert.equal(await sealed.getOrCreate("srs-secrets", () => "new"), "old-srs\n");
      assert.equal(await sealed.getOrCreate("dkim/a.example/mailroute.rsa.pem", () => "new"), "PEM");
      // a second node's files never mix into an established cluster
      writeFileSync(join(dir, "worker-secrets.key"), "late\n");
      assert.deepEqual(await importSecretFiles(db, sealed, dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
