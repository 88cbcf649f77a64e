import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { NODE_ID_FILE, processNodeId, resolveNodeId } from "../../src/config/node-id.ts";
import { NODE_ID } from "../../src/config/settings.ts";

it("makes a node id once (host name + random suffix), keeps it in the data directory, and --node-id wins", () => {
  const dir = mkdtempSync(join(tmpdir(), "mailroute-node-"));
  const other = mkdtempSync(join(tmpdir(), "mailroute-node-"));
  try {
    const first = resolveNodeId(null, dir);
    assert.ok(first.startsWith(`${hostname().split(".")[0]!.replace(/[^A-Za-z0-9-]/g, "").slice(0, 40)}-`), first);
    assert.equal(readFileSync(join(dir, NODE_ID_FILE), "utf8").trim(), first);
    assert.equal(resolveNodeId(null, dir), first, "stable across restarts");
    assert.notEqual(resolveNodeId(null, other), first, "two nodes on one host differ");
    assert.equal(resolveNodeId("mx1", dir), "mx1");
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

it("names service process k of a node <node id>-p<k>, still a valid node id when the base is long", () => {
  assert.equal(processNodeId("mx1-a1b2c3", 2), "mx1-a1b2c3-p2");
  const long = processNodeId("n".repeat(64), 12);
  assert.equal(long.length, 64);
  assert.ok(long.endsWith("-p12"));
  assert.match(long, NODE_ID);
});
