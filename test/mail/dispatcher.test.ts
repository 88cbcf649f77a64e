/**
 * The in-session dispatcher's read ahead of the delivery ledger (issue 11), over a real SQLite
 * store: it reads what the ledger holds, and a read that fails on a message that is never
 * dispatched (refused after it started) rejects nobody's process — only whoever awaits it.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { createInSessionDispatcher } from "../../src/mail/dispatcher.ts";
import { recordAccepted, storeDeliveryLedger } from "../../src/store/delivery-ledger-store.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { Store } from "../../src/store/store.ts";

const refuseSends = async () => {
  throw new Error("this test sends nothing");
};

describe("in-session dispatcher: reading the ledger ahead", () => {
  let dir: string;
  let store: Store;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "mailroute-dispatcher-"));
    store = await openStore({ dataDir: dir });
  });

  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reads what the ledger holds for the fingerprint", async () => {
    await recordAccepted(store.db, { fingerprint: "fp-known", destination: "inbox@dest.test", upstreamReply: "250 ok", now: new Date(), ttlDays: 7 });
    const dispatcher = createInSessionDispatcher({ send: refuseSends, ledger: storeDeliveryLedger(store.db, { ttlDays: 7 }), deadlineMs: 5000 });
    const view = await dispatcher.readAhead!("fp-known");
    assert.deepEqual(view.accepted, new Set(["inbox@dest.test"]));
    assert.deepEqual((await dispatcher.readAhead!("fp-unknown")).accepted, new Set());
  });

  it("keeps a failed read that nobody awaits from becoming an unhandled rejection of the process", async () => {
    const closedDir = await mkdtemp(join(tmpdir(), "mailroute-dispatcher-closed-"));
    const closed = await openStore({ dataDir: closedDir });
    await closed.close();
    const unhandled: unknown[] = [];
    const listen = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", listen);
    try {
      const dispatcher = createInSessionDispatcher({ send: refuseSends, ledger: storeDeliveryLedger(closed.db, { ttlDays: 7 }), deadlineMs: 5000 });
      const read = dispatcher.readAhead!("fp-any");
      // a refused message: nobody awaits its read; unhandled rejections are reported after a turn
      await sleep(50);
      assert.deepEqual(unhandled, []);
      // whoever does await it hears the store's error, as if it had read the ledger itself
      await assert.rejects(read);
    } finally {
      process.off("unhandledRejection", listen);
      await rm(closedDir, { recursive: true, force: true });
    }
  });
});
