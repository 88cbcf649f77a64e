import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { workerCommand } from "../../src/cli/worker/worker-command.ts";
import { DEFAULT_ACCOUNT_ID as DEFAULT_ACCOUNT } from "../../src/store/open-store.ts";
import { createKvNamespaces } from "../../src/core/kv/kv-namespaces.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

/**
 * A Cloudflare-style router with the reference README's semantics: `,` separates primaries that
 * all get the message, `:` lists backups tried in order; a failure is rethrown (recoverable), so
 * the sender retries.
 */
const FAILOVER_WORKER = `
export default {
  async email(message, env, ctx) {
    const user = message.to.split("@")[0].split("+")[0];
    const stored = env.MAP ? await env.MAP.get(user) : null;
    const destinations = (stored ?? env.DESTINATION).replace(/\\s+/g, "");
    if (!destinations) { message.setReject("Invalid recipient"); return; }
    const failures = [];
    await Promise.all(destinations.split(",").map(async (primary) => {
      let lastError = null;
      for (const address of primary.split(":")) {
        try { await message.forward(address, new Headers({ "X-Forwarded-By": "failover-worker" })); return; }
        catch (error) { lastError = error; console.log("forward to " + address + " failed: " + error.message); }
      }
      failures.push(lastError);
    }));
    if (failures.length > 0) throw failures[0];
  },
};`;

const ALLOW_LIST_WORKER = `
export default {
  allowed: ["friend@origin.test"],
  async email(message, env) {
    if (!this.allowed.includes(message.from)) {
      message.setReject("550 5.7.1 Address not allowed: " + message.from);
      return;
    }
    await message.forward(env.DESTINATION);
  },
};`;

// a worker's exception may carry secrets and private addresses: they must not reach the sender
const THROWING_WORKER = `export default { async email() { throw new Error("database is down: upstream refused API key sk_live_51HxQ for alice.private@example.net"); } };`;

// answers the sender and does nothing else
const ANSWERING_WORKER = `
import { EmailMessage } from "cloudflare:email";
export default {
  async email(message) {
    const raw = ["From: Desk <desk@example.com>", "To: " + message.from, "Subject: Re: your mail", "Message-ID: <answer-" + Date.now() + "@example.com>",
      "In-Reply-To: " + message.headers.get("message-id"), "", "Thanks, we got it."].join("\\r\\n");
    await message.reply(new EmailMessage("desk@example.com", message.from, raw));
  },
};`;

// marks in KV that it started, then takes SLOW_MS: a worker that holds its invocation slots
// (a "warm-up" message only gets its runtime started)
// longer than the half of the 10 s deadline a message may wait for a slot
const SLOW_MS = 6000;
const SLOW_WORKER = `
export default {
  async email(message, env) {
    if (message.headers.get("subject") === "warm-up") return;
    await env.MARKS.put(crypto.randomUUID(), "started");
    await new Promise((resolve) => setTimeout(resolve, ${SLOW_MS}));
  },
};`;

const SPINNING_WORKER = `export default { async email() { for (;;) {} } };`;

// Loopback is not on --worker-fetch-allow here, so the runtime must refuse it (no traffic leaves).
const PROBING_WORKER = `
export default {
  async email(message) {
    try { await fetch("http://127.0.0.1:9/admin"); message.setReject("fetch went through"); }
    catch (error) { message.setReject("fetch refused: " + error.message); }
  },
};`;

const PARSER_WORKER_TS = `
import PostalMime from "postal-mime";
interface Env { DESTINATION: string }
export default {
  async email(message: any, env: Env): Promise<void> {
    const parsed = await PostalMime.parse(message.raw);
    await message.forward(env.DESTINATION, new Headers({ "X-Parsed-Subject": String(parsed.subject ?? "") }));
  },
};`;

async function deploy(h: Harness, name: string, entry: string, ...args: string[]) {
  const lines: string[] = [];
  await workerCommand(["deploy", name, entry, "--data-dir", h.dataDir, ...args], { out: (line) => lines.push(line) });
  return lines;
}

/** What `mailroute worker tail <name> --once` prints. */
async function tail(h: Harness, name: string): Promise<string[]> {
  const lines: string[] = [];
  await workerCommand(["tail", name, "--once", "--lines", "50", "--data-dir", h.dataDir], { out: (line) => lines.push(line) });
  return lines;
}

async function send(h: Harness, from: string, to: string, subject = "worker test") {
  const { client } = await SmtpTestClient.connect(h.port);
  const env = await client.envelope(from, [to]);
  assert.equal(env.rcpts[0]!.code, 250, env.rcpts[0]!.line);
  const reply = await client.data(testMessage({ from, to, subject }));
  await client.quit();
  return reply;
}

describe("Email Workers over real SMTP", () => {
  let h: Harness;
  let project: string;

  before(async () => {
    // the deadline covers starting a worker's runtime too: a loaded test machine needs seconds for it
    h = await startHarness({ destinations: ["dest.test", "backup.test", "other.test", "origin.test"], settings: { "worker-deadline": "10000" } });
    project = mkdtempSync(join(tmpdir(), "mailroute-worker-project-"));
    symlinkSync(join(import.meta.dirname, "..", "..", "node_modules"), join(project, "node_modules"));
    writeFileSync(join(project, "failover.js"), FAILOVER_WORKER);
    writeFileSync(join(project, "allow.js"), ALLOW_LIST_WORKER);
    writeFileSync(join(project, "throws.js"), THROWING_WORKER);
    writeFileSync(join(project, "spin.js"), SPINNING_WORKER);
    writeFileSync(join(project, "probe.js"), PROBING_WORKER);
    writeFileSync(join(project, "answer.js"), ANSWERING_WORKER);
    writeFileSync(join(project, "slow.js"), SLOW_WORKER);
    mkdirSync(join(project, "parser", "src"), { recursive: true });
    writeFileSync(join(project, "parser", "src", "index.ts"), PARSER_WORKER_TS);
    writeFileSync(join(project, "parser", "wrangler.toml"), 'name = "parser"\nmain = "src/index.ts"\ncompatibility_date = "2024-09-23"\n\n[vars]\nDESTINATION = "a@dest.test"\n');
    symlinkSync(join(import.meta.dirname, "..", "..", "node_modules"), join(project, "parser", "node_modules"));

    await deploy(h, "failover", join(project, "failover.js"), "--var", "DESTINATION=a@dest.test:b@backup.test, c@other.test", "--kv", "MAP=routes");
    await deploy(h, "allow", join(project, "allow.js"), "--var", "DESTINATION=a@dest.test");
    await deploy(h, "throws", join(project, "throws.js"));
    await deploy(h, "spin", join(project, "spin.js"));
    await deploy(h, "probe", join(project, "probe.js"));
    await deploy(h, "answer", join(project, "answer.js"));
    await deploy(h, "slow", join(project, "slow.js"), "--kv", "MARKS=marks");
    await deploy(h, "parser", join(project, "parser", "src", "index.ts"), "--config", join(project, "parser", "wrangler.toml"));
    await workerCommand(["kv", "put", "routes", "kvuser", "c@other.test", "--data-dir", h.dataDir], { out: () => undefined });

    await h.config.zones.create("example.com", { supportSubaddress: true });
    for (const address of ["a@dest.test", "b@backup.test", "c@other.test"]) await h.config.addresses.create(address, { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "router@example.com" }], actions: [{ type: "worker", value: ["failover"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "kvuser@example.com" }], actions: [{ type: "worker", value: ["failover"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "private@example.com" }], actions: [{ type: "worker", value: ["allow"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "broken@example.com" }], actions: [{ type: "worker", value: ["throws"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "parse@example.com" }], actions: [{ type: "worker", value: ["parser"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "ghost@example.com" }], actions: [{ type: "worker", value: ["not-deployed"] }] }, undefined, { allowUndeployedWorker: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "spin@example.com" }], actions: [{ type: "worker", value: ["spin"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "probe@example.com" }], actions: [{ type: "worker", value: ["probe"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "desk@example.com" }], actions: [{ type: "worker", value: ["answer"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "slow@example.com" }], actions: [{ type: "worker", value: ["slow"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "plain@example.com" }], actions: [{ type: "forward", value: ["a@dest.test"] }] });
    await h.reload();
  });

  after(async () => {
    await h?.stop();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const sink of Object.values(h.sinks)) sink.reset();
  });

  it("runs a multi-destination failover worker: a 451 moves to the backup, every primary receives it", async () => {
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 451, text: "4.2.1 try later", address: "a@dest.test" });
    const reply = await send(h, "friend@origin.test", "router+news@example.com");
    assert.equal(reply.code, 250, reply.line);
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
    const [backup] = h.sinks["backup.test"]!.messagesFor("b@backup.test");
    assert.ok(backup, "the backup got it");
    // Header names are case-insensitive (RFC 5322); the runtime's Headers object lower-cases them.
    assert.match(backup.text, /\r\nX-Forwarded-By: failover-worker\r\n/i);
    assert.match(backup.text, /^ARC-Seal: /, "a worker's forward is signed and sealed like a rule's");
    assert.match(backup.from, /^SRS0=/, "and SRS-rewritten");
    assert.equal(h.sinks["other.test"]!.messagesFor("c@other.test").length, 1);
  });

  it("answers 451 4.3.0 with an incident id when every backup failed temporarily, so the sender retries; the worker's error goes to its log", async () => {
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 451, text: "4.2.1 try later", address: "a@dest.test" });
    h.sinks["backup.test"]!.fail({ stage: "rcpt", code: 452, text: "4.2.2 full", address: "b@backup.test" });
    const reply = await send(h, "friend@origin.test", "router@example.com");
    assert.equal(reply.code, 451, reply.line);
    assert.equal(reply.enhanced, "4.3.0");
    assert.doesNotMatch(reply.text, /could not send email|backup\.test/);
    const incident = /\(incident ([0-9a-f]{12})\)/.exec(reply.text)?.[1];
    assert.ok(incident, reply.line);
    assert.ok((await tail(h, "failover")).some((line) => line.includes(`incident ${incident}: failed: could not send email: Unknown error: transient error (452)`)));
  });

  it("routes with configuration read from KV on our store", async () => {
    const reply = await send(h, "friend@origin.test", "kvuser@example.com");
    assert.equal(reply.code, 250, reply.line);
    assert.equal(h.sinks["other.test"]!.messagesFor("c@other.test").length, 1);
    assert.equal(h.sinks["dest.test"]!.messages.length + h.sinks["backup.test"]!.messages.length, 0);
  });

  it("turns setReject into 550 5.7.1 without doubling the SMTP code", async () => {
    const refused = await send(h, "stranger@origin.test", "private@example.com");
    assert.equal(refused.code, 550, refused.line);
    assert.equal(refused.enhanced, "5.7.1");
    assert.equal(refused.line, "550 5.7.1 Address not allowed: stranger@origin.test");
    assert.equal((await send(h, "friend@origin.test", "private@example.com")).code, 250);
    assert.equal(h.sinks["dest.test"]!.messagesFor("a@dest.test").length, 1);
  });

  it("answers 451 4.3.0 with a generic reason and an incident id when the worker throws; its words go to worker tail and the activity log", async () => {
    const reply = await send(h, "friend@origin.test", "broken@example.com");
    assert.equal(reply.code, 451, reply.line);
    assert.equal(reply.enhanced, "4.3.0");
    assert.doesNotMatch(reply.line, /database|sk_live|alice\.private/);
    const incident = /\(incident ([0-9a-f]{12})\)/.exec(reply.text)?.[1];
    assert.ok(incident, reply.line);
    const lines = await tail(h, "throws");
    assert.ok(lines.some((line) => line.includes(`mailroute: incident ${incident}: failed: database is down: upstream refused API key sk_live_51HxQ`)), lines.join("\n"));
    assert.ok(lines.every((line) => !line.includes(process.cwd())), "stack traces in the log do not name the install path");
    // the events follow the sender's reply (store/pending-writes.ts)
    await h.mailroute.afterReply.settled();
    const [event] = await h.configStore.db.selectFrom("events").selectAll().where("rcpt_to", "=", "broken@example.com").orderBy("id", "desc").limit(1).execute();
    const detail = JSON.parse(event!.detail) as { worker: { incident: string; error: string } };
    assert.equal(detail.worker.incident, incident);
    assert.match(detail.worker.error, /sk_live_51HxQ for alice\.private@example\.net/);
  });

  it("answers 250 \"answered by the Email Worker\" for a message the worker handled only with reply()", async () => {
    const reply = await send(h, "friend@origin.test", "desk@example.com");
    assert.equal(reply.code, 250, reply.line);
    assert.match(reply.line, /^250 2\.0\.0 Ok: queued as \S+, answered by the Email Worker$/);
    const [answer] = h.sinks["origin.test"]!.messagesFor("friend@origin.test");
    assert.ok(answer, "the reply reached the sender");
    assert.match(answer.text, /\r\nSubject: Re: your mail\r\n/);
  });

  it("lets another worker's mail through at once while a slow worker saturates its share of invocation slots", async () => {
    const marks = createKvNamespaces(h.configStore.db, DEFAULT_ACCOUNT);
    const started = async () => (await marks.list("marks", { limit: 1000 })).keys.length;
    // warm: the account's runtime already runs the slow worker, so the burst below is about slots
    assert.equal((await send(h, "friend@origin.test", "slow@example.com", "warm-up")).code, 250);
    assert.equal((await send(h, "friend@origin.test", "private@example.com", "warm-up")).code, 250);
    const warm = await started();
    const order: string[] = [];
    // more slow mail than the 16 slots all workers share; only invocations that ran count in
    // `order`: the ones deferred for want of a slot delayed nobody
    const slow = Array.from({ length: 18 }, () => send(h, "friend@origin.test", "slow@example.com").then((reply) => (reply.code === 250 && order.push("slow"), reply)));
    for (let polls = 0; (await started()) - warm < 8 && polls < 600; polls++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok((await started()) - warm >= 8, "the slow worker is running its share");
    const quick = await send(h, "friend@origin.test", "private@example.com");
    order.push("quick");
    assert.equal(quick.code, 250, quick.line);
    assert.equal((await started()) - warm, 8, "the slow worker ran no more than its share of 8 at once");
    const slowReplies = await Promise.all(slow);
    assert.equal(order[0], "quick", `the other worker's answer came before any slow invocation finished: ${order.join(",")}`);
    // beyond its share, slow mail waited at most half the deadline and was deferred (a late
    // admission has only the rest of the deadline, and may run out of it)
    for (const reply of slowReplies) assert.match(reply.line, /^(250 |451 4\.3\.2 |451 4\.3\.0 )/);
    assert.ok(slowReplies.some((reply) => reply.line.startsWith("451 4.3.2 ")), "some slow mail found no slot in time");
  });

  it("cuts off an infinite loop at the deadline with 451 4.3.0 while other mail keeps flowing", async () => {
    const spinning = send(h, "friend@origin.test", "spin@example.com");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const plain = await send(h, "friend@origin.test", "plain@example.com");
    assert.equal(plain.code, 250, "a rule's mail is not held up by the spinning worker");
    const spun = await spinning;
    assert.equal(spun.code, 451, spun.line);
    assert.equal(spun.enhanced, "4.3.0");
    assert.match(spun.text, /ran out of time/);
    assert.equal(h.sinks["dest.test"]!.messagesFor("a@dest.test").length, 1);
    const after = await send(h, "friend@origin.test", "private@example.com");
    assert.equal(after.code, 250, `the account runtime is restarted and serves the next message: ${after.line}`);
  });

  it("refuses a worker's fetch() to a loopback address", async () => {
    const reply = await send(h, "friend@origin.test", "probe@example.com");
    assert.equal(reply.code, 550, reply.line);
    assert.match(reply.text, /fetch refused/);
    // the worker saw only workerd's "internal error; reference = …": the operator sees why
    const reference = /reference = (\w+)/.exec(reply.text)?.[1];
    assert.ok(reference, reply.line);
    const explained = new RegExp(`internal error ${reference}: fetch\\(\\) refused by the network policy`);
    assert.ok((await tail(h, "probe")).some((line) => explained.test(line)), "worker tail says why");
    // the events follow the sender's reply (store/pending-writes.ts)
    await h.mailroute.afterReply.settled();
    const [event] = await h.configStore.db.selectFrom("events").selectAll().where("rcpt_to", "=", "probe@example.com").orderBy("id", "desc").limit(1).execute();
    assert.match(event!.detail, explained, "and so does the activity log");
  });

  it("records each invocation with its console output in the activity log", async () => {
    h.sinks["dest.test"]!.fail({ stage: "rcpt", code: 550, text: "5.1.1 gone", address: "a@dest.test" });
    await send(h, "friend@origin.test", "router@example.com");
    // the events follow the sender's reply (store/pending-writes.ts)
    await h.mailroute.afterReply.settled();
    const [event] = await h.configStore.db.selectFrom("events").selectAll().where("rcpt_to", "=", "router@example.com").orderBy("id", "desc").limit(1).execute();
    const detail = JSON.parse(event!.detail) as { worker: { script: string; outcome: string; logs: { message: string }[] } };
    assert.equal(event!.action, "worker");
    assert.equal(detail.worker.script, "failover");
    assert.ok(detail.worker.logs.some((log) => /forward to a@dest\.test failed: could not send email: Unknown error: permanent error \(550\)/.test(log.message)), JSON.stringify(detail.worker.logs));
  });
});
