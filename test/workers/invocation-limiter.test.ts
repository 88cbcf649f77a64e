import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvocationLimiter, type InvocationLease, type InvocationTicket } from "../../src/workers/invocation-limiter.ts";

const MIB = 1048576;
const LONG_WAIT = 60_000;

function ticket(account: string, worker: string, bytes = 1024): InvocationTicket {
  return { account, worker, bytes };
}

/** Acquires and records the order in which leases are granted. */
function tracker(limiter: InvocationLimiter) {
  const granted: string[] = [];
  const leases = new Map<string, InvocationLease>();
  return {
    granted,
    leases,
    acquire(label: string, wanted: InvocationTicket, waitMs = LONG_WAIT): Promise<InvocationLease | null> {
      return limiter.acquire(wanted, waitMs).then((lease) => {
        if (lease !== null) {
          granted.push(label);
          leases.set(label, lease);
        }
        return lease;
      });
    },
    release(label: string): void {
      const lease = leases.get(label);
      assert.ok(lease, `no lease for ${label}`);
      lease.release();
    },
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("InvocationLimiter", () => {
  it("runs at most maxRunning at once, and one worker's invocations in arrival order", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 2 });
    const t = tracker(limiter);
    for (const n of [0, 1, 2, 3, 4]) void t.acquire(`m${n}`, ticket("acct", "router"));
    await turn();
    assert.deepEqual(t.granted, ["m0", "m1"]);
    assert.equal(limiter.running, 2);
    assert.equal(limiter.waiting, 3);
    for (const n of [0, 1, 2, 3, 4]) {
      t.release(`m${n}`);
      await turn();
    }
    assert.deepEqual(t.granted, ["m0", "m1", "m2", "m3", "m4"]);
    assert.equal(limiter.running, 0);
    assert.equal(limiter.waiting, 0);
  });

  it("a slow worker saturating its share does not hold up another worker's or another account's invocation", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 6, maxPerAccount: 4, maxPerWorker: 2 });
    const t = tracker(limiter);
    // twenty invocations of a slow worker arrive first, none of them finishing during the test
    for (let n = 0; n < 20; n++) void t.acquire(`slow${n}`, ticket("hostile", "slow"));
    await turn();
    assert.deepEqual(limiter.usage("hostile", "slow"), { running: 2, waiting: 18 });
    // a trivial worker of the same account and one of another account are admitted at once,
    // without any slow invocation finishing
    const sibling = await t.acquire("sibling", ticket("hostile", "trivial"), 0);
    const other = await t.acquire("other", ticket("quiet", "trivial"), 0);
    assert.ok(sibling, "the same account's other worker got a slot without waiting");
    assert.ok(other, "another account's worker got a slot without waiting");
    assert.equal(sibling.waitedMs, 0);
    assert.deepEqual(limiter.usage("hostile"), { running: 3, waiting: 18 });
    assert.deepEqual(limiter.usage("quiet"), { running: 1, waiting: 0 });
    // the slow worker's backlog stays capped at its share while capacity is free
    assert.equal(limiter.running, 4);
    assert.deepEqual(t.granted.filter((label) => label.startsWith("slow")), ["slow0", "slow1"]);
  });

  it("caps an account across its workers and grants freed capacity round-robin across accounts", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 2, maxPerAccount: 2, maxPerWorker: 2 });
    const t = tracker(limiter);
    void t.acquire("a1", ticket("A", "w"));
    void t.acquire("a2", ticket("A", "w"));
    await turn();
    // A's backlog arrives before B's and C's, yet each freed slot goes to the account served least recently
    for (const label of ["a3", "a4", "a5"]) void t.acquire(label, ticket("A", "w"));
    void t.acquire("b1", ticket("B", "w"));
    void t.acquire("b2", ticket("B", "w"));
    void t.acquire("c1", ticket("C", "w"));
    await turn();
    for (const label of ["a1", "a2", "b1", "c1", "a3", "b2"]) {
      t.release(label);
      await turn();
    }
    assert.deepEqual(t.granted, ["a1", "a2", "b1", "c1", "a3", "b2", "a4", "a5"]);
  });

  it("bounds the message bytes held at once, admitting a smaller message that fits and an oversized one alone", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 8, maxBytes: 10 * MIB });
    const t = tracker(limiter);
    await t.acquire("six", ticket("A", "big", 6 * MIB));
    void t.acquire("five", ticket("A", "big", 5 * MIB));
    await turn();
    assert.deepEqual(t.granted, ["six"], "6 + 5 MiB is over the 10 MiB budget");
    assert.equal(limiter.bytes, 6 * MIB);
    assert.ok(await t.acquire("three", ticket("A", "small", 3 * MIB), 0), "a message that fits passes one that does not");
    void t.acquire("huge", ticket("B", "w", 25 * MIB));
    t.release("six");
    await turn();
    assert.deepEqual(t.granted, ["six", "three", "five"]);
    t.release("three");
    t.release("five");
    await turn();
    assert.deepEqual(t.granted, ["six", "three", "five", "huge"], "larger than the whole budget, it runs once nothing else does");
    assert.equal(limiter.bytes, 25 * MIB);
  });

  it("gives up after waitMs with null, leaving nothing behind", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 1 });
    const held = await limiter.acquire(ticket("A", "w"), 0);
    assert.ok(held);
    assert.equal(await limiter.acquire(ticket("B", "w"), 30), null);
    assert.equal(await limiter.acquire(ticket("B", "w"), 0), null);
    assert.deepEqual(limiter.usage("B"), { running: 0, waiting: 0 });
    assert.equal(limiter.waiting, 0);
    held.release();
    held.release();
    assert.equal(limiter.running, 0, "a second release changes nothing");
    assert.ok(await limiter.acquire(ticket("B", "w"), 0));
  });

  it("refuses a capacity that is not a positive whole number", () => {
    assert.throws(() => new InvocationLimiter({ maxRunning: 0 }), RangeError);
    assert.throws(() => new InvocationLimiter({ maxRunning: 4, maxPerWorker: 1.5 }), RangeError);
    assert.throws(() => new InvocationLimiter({ maxRunning: 4, maxBytes: 0 }), RangeError);
  });
});
