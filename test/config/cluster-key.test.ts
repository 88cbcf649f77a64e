import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { clusterKeyId, ClusterKeyError, loadClusterKey } from "../../src/config/cluster-key.ts";
import { loadSettings, SettingsError } from "../../src/config/settings.ts";

describe("the cluster key", () => {
  const raw = randomBytes(32);

  it("comes from MAILROUTE_CLUSTER_KEY (base64 of 32 bytes), named by a short id", () => {
    const settings = loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_CLUSTER_KEY: raw.toString("base64") });
    assert.deepEqual(settings.clusterKey?.key, raw);
    assert.equal(settings.clusterKey?.id, clusterKeyId(raw));
    assert.match(settings.clusterKey!.id, /^[0-9a-f]{16}$/);
  });

  it("comes from --cluster-key-file (an openssl rand -base64 32 file)", () => {
    const dir = mkdtempSync(join(tmpdir(), "mailroute-key-"));
    try {
      writeFileSync(join(dir, "cluster.key"), `${raw.toString("base64")}\n`);
      const settings = loadSettings({ hostname: "mx.example.com", "cluster-key-file": join(dir, "cluster.key") }, {});
      assert.deepEqual(settings.clusterKey?.key, raw);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is absent when neither is given", () => {
    assert.equal(loadSettings({ hostname: "mx.example.com" }, {}).clusterKey, null);
  });

  it("refuses a key of the wrong length or not base64, without echoing it", () => {
    const short = randomBytes(16).toString("base64");
    assert.throws(() => loadClusterKey({ file: null, inline: short }), (error: Error) => error instanceof ClusterKeyError && /16 bytes, a cluster key is 32/.test(error.message) && !error.message.includes(short));
    assert.throws(() => loadClusterKey({ file: null, inline: "not base64!" }), /not base64/);
    assert.throws(() => loadSettings({ hostname: "mx.example.com" }, { MAILROUTE_CLUSTER_KEY: short }), SettingsError);
  });

  it("refuses both a file and the environment", () => {
    assert.throws(() => loadClusterKey({ file: "/x", inline: raw.toString("base64") }), /not both/);
  });
});

describe("--node-id", () => {
  it("accepts a name and refuses what would not read well in a log line", () => {
    assert.equal(loadSettings({ hostname: "mx.example.com", "node-id": "mx1.fra" }, {}).nodeId, "mx1.fra");
    assert.equal(loadSettings({ hostname: "mx.example.com" }, {}).nodeId, null);
    assert.throws(() => loadSettings({ hostname: "mx.example.com", "node-id": "has space" }, {}), SettingsError);
  });
});
