/**
 * --store-writer-thread (SQLite): on by default, the delivery ledger's and the activity events'
 * writes run beside the SMTP thread (src/store/sqlite-writer.ts): on the first signing thread, or
 * on a thread of their own with --signing-threads 0 (the OS names it "mailroute-store"); false
 * makes them on the SMTP thread, grouped per turn of its event loop (sqlite-group-commit.ts). Either way a relayed message is in the ledger and the activity
 * log by the time the sender hears 250; only the threads differ.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

/** Names of this process's threads, as the OS has them (15 characters at most). */
function threadNames(): string[] {
  return readdirSync("/proc/self/task").map((task) => readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim());
}

const MODES: { label: string; settings: Record<string, string>; where: string; ownThread: boolean }[] = [
  { label: "--store-writer-thread true (the default)", settings: {}, where: "written on the first signing thread", ownThread: false },
  { label: "--store-writer-thread true --signing-threads 0", settings: { "signing-threads": "0" }, where: "written on a thread of their own", ownThread: true },
  { label: "--store-writer-thread false", settings: { "store-writer-thread": "false" }, where: "written on the SMTP thread", ownThread: false },
];

for (const mode of MODES) {
  describe(mode.label, () => {
    let h: Harness;

    before(async () => {
      h = await startHarness({ destinations: ["dest.test"], settings: mode.settings });
      await h.config.zones.create("route.example");
      await h.config.addresses.create("alice@dest.test", { verified: true });
      await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@route.example" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
      await h.reload();
    });

    after(async () => {
      await h?.stop();
      if (mode.ownThread) assert.ok(!threadNames().includes("mailroute-store"), "the writer thread ends with the service");
    });

    it(`relays, with the acceptance in the ledger and the event in the activity log once the writes after the sender's 250 settle, ${mode.where}`, async () => {
      assert.equal(threadNames().includes("mailroute-store"), mode.ownThread);
      const { client } = await SmtpTestClient.connect(h.port);
      await client.envelope("sender@origin.test", ["hello@route.example"]);
      const reply = await client.data(testMessage({ from: "sender@origin.test", to: "hello@route.example" }));
      await client.quit();
      assert.equal(reply.code, 250, reply.line);
      assert.equal(h.sinks["dest.test"]!.messagesFor("alice@dest.test").length, 1);
      // written after the reply (store/pending-writes.ts), and waited for at shutdown
      await h.mailroute.afterReply.settled();
      const accepted = await h.configStore.db.selectFrom("delivery_ledger").select(["destination", "upstream_reply"]).execute();
      assert.deepEqual(accepted.map((row) => row.destination), ["alice@dest.test"]);
      const events = await h.configStore.db.selectFrom("events").select(["rcpt_to", "outcome"]).execute();
      assert.deepEqual(events, [{ rcpt_to: "hello@route.example", outcome: "forwarded" }]);
    });
  });
}
