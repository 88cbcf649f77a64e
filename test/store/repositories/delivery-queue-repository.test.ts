/**
 * The durable queue's storage on both databases: bytes back exactly as stored (in chunks),
 * claims exclusive between runners (nodes), a lapsed claim taken over, updates only by the
 * claim's holder, a restarted node's own claims released at once and no one else's.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { it } from "node:test";
import { claimDueMessages, enqueueMessage, replaceWithNotification, getQueued, readQueuedChunks, releaseClaimsOf, removeQueued, rescheduleQueued, type NewQueuedMessage } from "../../../src/store/repositories/delivery-queue-repository.ts";
import { forEachDatabase } from "../../support/store-fixtures.ts";

function entry(at: Date, overrides: Partial<NewQueuedMessage> = {}): NewQueuedMessage {
  return {
    id: randomUUID(),
    account: "default",
    zone: "example.com",
    createdAt: at,
    nextAttemptAt: at,
    expiresAt: new Date(at.getTime() + 86_400_000),
    envelopeFrom: "SRS0=x@mx.test",
    dsnTo: "alice@sender.test",
    recipients: ["a@example.com"],
    chains: [["one@dest.test", "backup@dest.test"]],
    fingerprint: randomBytes(8).toString("hex"),
    size: 0,
    messageId: "<m@x>",
    subject: "s",
    lastReply: null,
    delivered: 0,
    ...overrides,
  };
}

async function* pieces(buffer: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < buffer.length; offset += size) yield buffer.subarray(offset, offset + size);
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

forEachDatabase((target) => {
  it("gives back a large message byte for byte, stored in bounded chunks", async () => {
    const store = await target.open();
    const bytes = randomBytes(700 * 1024 + 13);
    const message = entry(new Date(), { size: bytes.length });
    await enqueueMessage(store.db, store.dialect, message, pieces(bytes, 10_000));
    assert.ok((await collect(readQueuedChunks(store.db, message.id))).equals(bytes));
    const chunks = await store.db.selectFrom("queued_message_chunks").select(["seq"]).where("message_id", "=", message.id).execute();
    assert.equal(chunks.length, 3, "256 KiB chunks");
  });

  it("lets one runner claim a due message at a time, and another take it over once the claim lapsed", async () => {
    const a = await target.open();
    const b = await target.open();
    const now = new Date();
    const ids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const message = entry(now);
      ids.add(message.id);
      await enqueueMessage(a.db, a.dialect, message, pieces(Buffer.from("x"), 1));
    }
    const later = new Date(now.getTime() + 1000);
    const claimUntil = new Date(now.getTime() + 60_000);
    const [first, second] = await Promise.all([
      claimDueMessages(a.db, a.dialect, { node: "node-a", now: later, claimUntil, limit: 4 }),
      claimDueMessages(b.db, b.dialect, { node: "node-b", now: later, claimUntil, limit: 4 }),
    ]);
    const claimed = [...first, ...second].map((row) => row.id);
    assert.equal(claimed.length, 6, "every message claimed");
    assert.equal(new Set(claimed).size, 6, "none claimed twice");
    assert.deepEqual(await claimDueMessages(b.db, b.dialect, { node: "node-b", now: later, claimUntil, limit: 10 }), [], "claimed messages are not claimed again");
    // node A dies holding its claims: after they lapse, node B gets them
    const afterLapse = new Date(claimUntil.getTime() + 1);
    const taken = await claimDueMessages(b.db, b.dialect, { node: "node-b", now: afterLapse, claimUntil: new Date(afterLapse.getTime() + 60_000), limit: 10 });
    assert.equal(taken.length, 6);
    // A's late update after losing its claim changes nothing
    const lost = first[0]!;
    assert.equal(await rescheduleQueued(a.db, lost.id, "node-a", { chains: [], nextAttemptAt: later, lastReply: null, deliveredNow: 1 }), false);
    assert.equal(await removeQueued(a.db, lost.id, "node-a"), false);
    assert.equal((await getQueued(a.db, lost.id, null))?.claimed_by, "node-b");
    assert.equal(await removeQueued(b.db, lost.id, "node-b"), true);
    assert.equal(await getQueued(a.db, lost.id, null), null);
    assert.deepEqual(await collect(readQueuedChunks(a.db, lost.id)), Buffer.alloc(0), "its bytes went with it");
  });

  it("releases the claims a node's dead process left, and only that node's", async () => {
    const store = await target.open();
    const now = new Date();
    for (let i = 0; i < 4; i++) await enqueueMessage(store.db, store.dialect, entry(now), pieces(Buffer.from("x"), 1));
    const claimUntil = new Date(now.getTime() + 60_000);
    const mine = await claimDueMessages(store.db, store.dialect, { node: "node-a", now, claimUntil, limit: 3 });
    const theirs = await claimDueMessages(store.db, store.dialect, { node: "node-b", now, claimUntil, limit: 3 });
    assert.equal(mine.length, 3);
    assert.equal(theirs.length, 1);
    assert.equal(await releaseClaimsOf(store.db, "node-a"), 3);
    // node A, restarted, claims its messages again well before the old claims would have lapsed
    const again = await claimDueMessages(store.db, store.dialect, { node: "node-a", now, claimUntil, limit: 10 });
    assert.deepEqual(again.map((row) => row.id).sort(), mine.map((row) => row.id).sort());
    assert.equal((await getQueued(store.db, theirs[0]!.id, null))?.claimed_by, "node-b", "another node's claim is left alone");
  });
  it("replaces a finished message with its DSN in one step, and only for the runner holding the claim", async () => {
    const store = await target.open();
    const now = new Date();
    const finished = entry(now);
    await enqueueMessage(store.db, store.dialect, finished, pieces(Buffer.from("original bytes"), 4));
    const claimUntil = new Date(now.getTime() + 60_000);
    await claimDueMessages(store.db, store.dialect, { node: "node-a", now: new Date(now.getTime() + 1), claimUntil, limit: 10 });
    const dsn = entry(now, { dsnTo: "", envelopeFrom: "", chains: [["alice@sender.test"]], recipients: ["alice@sender.test"] });
    assert.equal(await replaceWithNotification(store.db, store.dialect, { id: finished.id, node: "node-b" }, dsn, [Buffer.from("dsn bytes")]), false, "not node-b's claim");
    assert.notEqual(await getQueued(store.db, finished.id, null), null);
    assert.equal(await getQueued(store.db, dsn.id, null), null, "nothing half done");
    assert.equal(await replaceWithNotification(store.db, store.dialect, { id: finished.id, node: "node-a" }, dsn, [Buffer.from("dsn bytes")]), true);
    assert.equal(await getQueued(store.db, finished.id, null), null);
    assert.equal((await collect(readQueuedChunks(store.db, finished.id))).length, 0);
    assert.equal((await getQueued(store.db, dsn.id, null))?.dsn_to, "", "a DSN never gets a DSN");
    assert.equal((await collect(readQueuedChunks(store.db, dsn.id))).toString(), "dsn bytes");
  });
});
