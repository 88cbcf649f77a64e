/**
 * The routing table's compact rule index (src/routing/rule-index.ts): it must answer exactly as a
 * Map of the same entries would, for any text, however many rules.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RouteEntry, RuleAction } from "../../src/routing/routing-table.ts";
import { ruleIndexBuilder } from "../../src/routing/rule-index.ts";

const FORWARD: RuleAction = Object.freeze({ type: "forward", chains: [] });
const DROP: RuleAction = Object.freeze({ type: "drop" });

function entry(id: string, overrides: Partial<RouteEntry> = {}): RouteEntry {
  return { id, name: `rule ${id}`, enabled: true, action: FORWARD, ...overrides };
}

function indexOf(pairs: [string, RouteEntry][]): ReadonlyMap<string, RouteEntry> {
  const builder = ruleIndexBuilder();
  for (const [key, value] of pairs) builder.set(key, value);
  return builder.finish();
}

describe("rule index", () => {
  it("finds every key it was given, with the entry it was given, and nothing else", () => {
    const index = indexOf([
      ["sales@example.com", entry("r1")],
      ["support@example.com", entry("r2", { enabled: false, action: DROP })],
      ["sales@example.org", entry("r3", { deliveryMode: "queue" })],
    ]);
    assert.equal(index.size, 3);
    assert.deepEqual(index.get("sales@example.com"), entry("r1"));
    assert.deepEqual(index.get("support@example.com"), entry("r2", { enabled: false, action: DROP }));
    assert.deepEqual(index.get("sales@example.org"), entry("r3", { deliveryMode: "queue" }));
    assert.equal(index.has("sales@example.org"), true);
    for (const missing of ["sales@example.co", "ales@example.com", "Sales@example.com", "", "sales@example.comx"]) {
      assert.equal(index.get(missing), undefined, missing);
      assert.equal(index.has(missing), false, missing);
    }
  });

  it("gives frozen entries without a delivery mode when the rule has none, and shares actions", () => {
    const index = indexOf([
      ["a@example.com", entry("a")],
      ["b@example.com", entry("b")],
      ["c@example.com", entry("c", { deliveryMode: "relay" })],
    ]);
    const a = index.get("a@example.com")!;
    assert.ok(Object.isFrozen(a));
    assert.equal("deliveryMode" in a, false);
    assert.equal(index.get("c@example.com")!.deliveryMode, "relay");
    assert.equal(a.action, FORWARD);
    assert.equal(index.get("b@example.com")!.action, a.action);
  });

  it("keeps the later entry when a key is set again, as Map.set does", () => {
    const index = indexOf([
      ["dup@example.com", entry("old")],
      ["other@example.com", entry("other")],
      ["dup@example.com", entry("new")],
    ]);
    assert.equal(index.size, 2);
    assert.equal(index.get("dup@example.com")!.id, "new");
    assert.deepEqual([...index.keys()].toSorted(), ["dup@example.com", "other@example.com"]);
    assert.deepEqual([...index.values()].map((value) => value.id).toSorted(), ["new", "other"]);
  });

  it("holds text that is not ASCII: keys, ids and names in any script", () => {
    const pairs: [string, RouteEntry][] = [
      ["josé@bücher.example", entry("ü-1", { name: "Kundendienst für Bücher 📚" })],
      ["用户@例子.测试", entry("r-中", { name: "规则" })],
      ["jose@bucher.example", entry("ascii", { name: "plain" })],
      ["😀@emoji.example", entry("e", { name: "" })],
    ];
    const index = indexOf(pairs);
    for (const [key, value] of pairs) assert.deepEqual(index.get(key), value, key);
    assert.equal(index.get("josé@bucher.example"), undefined);
    assert.deepEqual([...index.keys()], pairs.map(([key]) => key));
  });

  it("iterates in insertion order as entries, keys, values, forEach and for…of", () => {
    const pairs: [string, RouteEntry][] = ["x", "y", "z"].map((local) => [`${local}@example.com`, entry(local)]);
    const index = indexOf(pairs);
    assert.deepEqual([...index], pairs);
    assert.deepEqual([...index.entries()], pairs);
    const seen: string[] = [];
    index.forEach((value, key, map) => {
      assert.equal(map, index);
      seen.push(`${key}=${value.id}`);
    });
    assert.deepEqual(seen, ["x@example.com=x", "y@example.com=y", "z@example.com=z"]);
  });

  it("finds each of 200,000 keys and misses as many near-misses", () => {
    const builder = ruleIndexBuilder();
    const count = 200_000;
    for (let i = 0; i < count; i++) builder.set(`user${i}@zone${i % 7}.example`, entry(`id${i}`, { enabled: i % 3 !== 0 }));
    const index = builder.finish();
    assert.equal(index.size, count);
    for (let i = 0; i < count; i++) {
      const found = index.get(`user${i}@zone${i % 7}.example`);
      if (found?.id !== `id${i}` || found.enabled !== (i % 3 !== 0)) assert.fail(`user${i}: ${JSON.stringify(found)}`);
      if (index.has(`user${i}@zone${(i + 1) % 7}.example`)) assert.fail(`user${i} found in the wrong zone`);
    }
  });

  it("holds a rule whose text is larger than one chunk of the pool", () => {
    const long = "n".repeat(3 * 1024 * 1024);
    const index = indexOf([
      ["before@example.com", entry("before")],
      ["long@example.com", entry("long", { name: long })],
      ["after@example.com", entry("after")],
    ]);
    assert.equal(index.get("long@example.com")!.name.length, long.length);
    assert.equal(index.get("before@example.com")!.id, "before");
    assert.equal(index.get("after@example.com")!.id, "after");
  });

  it("is empty when given nothing, and refuses more rules once finished", () => {
    const builder = ruleIndexBuilder();
    const index = builder.finish();
    assert.equal(index.size, 0);
    assert.equal(index.get("anyone@example.com"), undefined);
    assert.deepEqual([...index], []);
    assert.throws(() => builder.set("late@example.com", entry("late")), /already finished/);
  });
});
