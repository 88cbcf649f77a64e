/**
 * Exactly-once across crashes, as far as SMTP allows it: a real `mailroute start` child process
 * is SIGKILLed at the two moments that matter, and restarted on the same data directory, while
 * a sender retries as an MTA would.
 *
 * 1. Right after the destination wrote its 250 (the destination's own hook fires the kill): the
 *    acceptance is not recorded, but the intent is, so the retry is held while that attempt
 *    might be live and then resent — at-least-once, never lost.
 * 2. After the acceptance was committed, before the sender heard back: the retry skips the
 *    destination that has the message, and delivers only the one still missing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices } from "../../src/core/services.ts";
import { openStore } from "../../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { startFlakySink, type FlakySink } from "../support/flaky-sink.ts";
import { MailrouteProcess } from "../support/mailroute-process.ts";
import { freePort } from "../support/free-port.ts";
import { SmtpTestClient, testMessage, type Reply } from "../support/smtp-test-client.ts";

// an attempt's intent holds retries for this plus a 2 s margin — unless the process that made it
// restarts and settles it at once, which the first test below checks happens before then
const RELAY_TIMEOUT_MS = 6000;


/** One transaction; rejects when the connection is lost before the final reply. */
async function send(port: number, rcpt: string, raw: string): Promise<Reply> {
  const { client } = await SmtpTestClient.connect(port);
  try {
    const { mail, rcpts } = await client.envelope("sender@origin.test", [rcpt]);
    assert.equal(mail.code, 250);
    if (rcpts[0]!.code !== 250) return rcpts[0]!;
    return await client.data(raw);
  } finally {
    await client.quit();
  }
}

/** Retries like an MTA (compressed): until 250, every 300 ms, bounded. */
async function retryUntilAccepted(port: number, rcpt: string, raw: string): Promise<{ replies: { at: number; reply: Reply }[] }> {
  const replies: { at: number; reply: Reply }[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const reply = await send(port, rcpt, raw);
    replies.push({ at: Date.now(), reply });
    if (reply.code === 250) return { replies };
    await sleep(300);
  }
  throw new Error(`not accepted within 60 s: ${replies.map((entry) => entry.reply.line).join(" | ")}`);
}

describe("a SIGKILLed mailroute, restarted on the same data directory", () => {
  let dns: TestDnsServer;
  let sink: FlakySink;
  let dataDir: string;
  let mailroute: MailrouteProcess;
  let killAfterNextAccept = false;
  const rcptDelay = new Map<string, number>();

  before(async () => {
    dns = await startDnsServer();
    sink = await startFlakySink({
      decide: () => "accept",
      rcptDelayMs: (rcpt) => rcptDelay.get(rcpt.toLowerCase()) ?? 0,
      // killed once the destination holds the copy, before its 250 is even written: the state a
      // crash between the destination's 250 and the ledger commit leaves (copy there, intent,
      // no acceptance), without racing the relay for the 250 (on a loaded machine it could win)
      beforeAccept() {
        if (killAfterNextAccept && mailroute.killNow()) killAfterNextAccept = false;
      },
    });
    for (const domain of ["a.test", "b.test"]) {
      dns.setRecords(domain, "MX", [{ exchange: `mx.${domain}`, priority: 10 }]);
      dns.setRecords(`mx.${domain}`, "A", ["127.0.0.1"]);
    }
    dataDir = mkdtempSync(join(tmpdir(), "mailroute-crash-"));
    const store = await openStore({ dataDir });
    try {
      const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
      await config.zones.create("crash.test");
      await config.addresses.create("one@a.test", { verified: true });
      await config.addresses.create("two@b.test", { verified: true });
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "solo@crash.test" }], actions: [{ type: "forward", value: ["one@a.test"] }] });
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "pair@crash.test" }], actions: [{ type: "forward", value: ["one@a.test", "two@b.test"] }] });
    } finally {
      await store.close();
    }
    mailroute = new MailrouteProcess(
      {
        "data-dir": dataDir,
        "http-host": "127.0.0.1",
        "http-port": String(await freePort()),
        hostname: "mx.crash.test",
        "dns-servers": dns.address,
        "outbound-port": String(sink.port),
        "admin-token": "crash-admin-token",
        "relay-timeout": String(RELAY_TIMEOUT_MS),
        "log-level": "info",
      },
      await freePort(),
    );
    await mailroute.start();
  });

  after(async () => {
    await mailroute?.stop();
    await sink?.stop();
    await dns?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it("after a kill right behind the destination's 250, the restarted process settles the dead attempt's intent and resends the retry at once", async () => {
    const messageId = "<crash-after-250@origin.test>";
    const raw = testMessage({ messageId, to: "solo@crash.test" });
    killAfterNextAccept = true;
    await assert.rejects(send(mailroute.port, "solo@crash.test", raw), /connection closed|ECONNRESET/);
    await mailroute.exited;
    assert.equal(sink.copiesOf(messageId, "one@a.test").length, 1, "the destination had accepted it");

    // what survived the kill: the intent, written before the dot; no acceptance
    const store = await openStore({ dataDir });
    const intents = await store.db.selectFrom("delivery_intents").select(["destination", "state", "settles_at"]).execute();
    const accepted = await store.db.selectFrom("delivery_ledger").select("destination").execute();
    await store.close();
    assert.deepEqual(intents.map(({ destination, state }) => ({ destination, state })), [{ destination: "one@a.test", state: "sending" }]);
    assert.deepEqual(accepted, []);
    const settlesAt = Date.parse(intents[0]!.settles_at);

    // the same data directory, so the same node id: that intent can only be the dead process's
    await mailroute.start();
    assert.ok(mailroute.logs.some((line) => line.event === "ledger_intents_recovered" && line["count"] === 1), "the restart settled the dead attempt's intent");
    const { replies } = await retryUntilAccepted(mailroute.port, "solo@crash.test", raw);
    assert.equal(replies.length, 1, `sent again at the first retry, not held: ${replies.map((entry) => entry.reply.line).join(" | ")}`);
    assert.ok(replies[0]!.at < settlesAt, "without waiting out the killed attempt's bound");
    // at-least-once: SMTP cannot ask the destination whether it kept the first copy
    assert.equal(sink.copiesOf(messageId, "one@a.test").length, 2);
    assert.ok(mailroute.logs.some((line) => line.event === "ledger_resending_maybe_delivered" && line["rcpt"] === "one@a.test"));
  });

  it("after a kill behind the ledger commit, delivers the retry only to the destination still missing it", async () => {
    const messageId = "<crash-after-commit@origin.test>";
    const raw = testMessage({ messageId, to: "pair@crash.test" });
    // two@b.test keeps the transaction open (no data sent) while one@a.test is accepted
    rcptDelay.set("two@b.test", 60_000);
    const sentAt = new Date().toISOString();
    const sending = send(mailroute.port, "pair@crash.test", raw);
    const store = await openStore({ dataDir });
    try {
      const deadline = Date.now() + 20_000;
      const committed = () => store.db.selectFrom("delivery_ledger").select("destination").where("destination", "=", "one@a.test").where("accepted_at", ">=", sentAt).execute();
      while ((await committed()).length === 0) {
        if (Date.now() > deadline) throw new Error("one@a.test's acceptance was never recorded");
        await sleep(20);
      }
    } finally {
      await store.close();
    }
    assert.ok(mailroute.killNow());
    await assert.rejects(sending, /connection closed|ECONNRESET/);
    await mailroute.exited;
    rcptDelay.clear();

    await mailroute.start();
    await retryUntilAccepted(mailroute.port, "pair@crash.test", raw);
    assert.equal(sink.copiesOf(messageId, "one@a.test").length, 1, "the recorded destination is not sent it again");
    assert.equal(sink.copiesOf(messageId, "two@b.test").length, 1);
  });
});
