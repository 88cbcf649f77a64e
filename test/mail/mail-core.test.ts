/**
 * The mail core behind every front end: recipients planned at RCPT, the step list of each plan
 * kind, and the one prepare-and-sign stage feeding one Dispatcher. Real parts: a DKIM key store
 * on disk, mailauth verifying the copies against a loopback DNS server, workerd running a real
 * Email Worker. The dispatcher here is a second implementation of the seam (it keeps what it is
 * handed, as the durable queue will), so what reaches the seam is exactly what is checked.
 */
import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { authenticate } from "mailauth";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";
import { MessageSpool } from "../../src/delivery/message-spool.ts";
import { createMessageSigner } from "../../src/delivery/message-signer.ts";
import type { LedgerView, RelayOutcome } from "../../src/delivery/relay-message.ts";
import { authenticateMessage } from "../../src/inbound/authenticate-message.ts";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { SrsRewriter } from "../../src/delivery/srs-rewriter.ts";
import type { MailEvent } from "../../src/analytics/event-recorder.ts";
import { createLogger } from "../../src/analytics/structured-log.ts";
import type { DispatchRequest, Dispatcher } from "../../src/mail/dispatcher.ts";
import { PendingWrites } from "../../src/store/pending-writes.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { Writable } from "node:stream";
import { createMailCore, type MailCore } from "../../src/mail/mail-core.ts";
import { MESSAGE_STEPS } from "../../src/mail/message-steps.ts";
import type { WorkerGateway } from "../../src/mail/worker-step.ts";
import { buildRoutingTable, DEFAULT_ZONE_POLICY, type RoutingTable } from "../../src/routing/routing-table.ts";
import { InvocationLimiter } from "../../src/workers/invocation-limiter.ts";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { MapKvStore, SAMPLE_MESSAGE, workerDefinition } from "../workers/fake-host.ts";

const HOST = "mx.mailroute.test";

interface Kept {
  request: DispatchRequest;
  bytes: Buffer;
}

/** Keeps every copy it is handed and reports each destination as accepting it. */
function keepingDispatcher(kept: Kept[]): Dispatcher {
  return {
    mode: "queue",
    async dispatch(request) {
      const parts: Buffer[] = [];
      for await (const chunk of request.message()) parts.push(chunk as Buffer);
      const bytes = Buffer.concat(parts);
      assert.equal(bytes.length, request.size, "the announced size is the size sent");
      kept.push({ request, bytes });
      const outcome: RelayOutcome = {
        status: "delivered",
        chains: request.chains.map((chain) => ({ chain, status: "delivered", deliveredTo: chain[0]!, attempts: [{ destination: chain[0]!, status: "accepted", code: 250, reply: "250 2.0.0 kept", upstream: "keeper", durationMs: 0 }] })),
      };
      return outcome;
    },
  };
}

const FORWARDER = workerDefinition({
  account: "default",
  name: "forwarder",
  bundle: `export default { async email(message) { await message.forward("dest@dest.test", new Headers({ "X-Handled-By": "forwarder" })); } };`,
});

let dns: TestDnsServer;
let keyDir: string;
let runtime: WorkerRuntime;
let table: RoutingTable;
let core: MailCore;
const kept: Kept[] = [];
const events: MailEvent[] = [];
const srs = new SrsRewriter({ secrets: ["mail-core-test"], domain: HOST });

before(async () => {
  dns = await startDnsServer();
  keyDir = await mkdtemp(join(tmpdir(), "mailroute-mail-core-"));
  const keys = new DkimKeyStore({ dir: keyDir });
  for (const record of await keys.publicRecords("example.com")) dns.setRecords(record.name, "TXT", [record.value]);
  runtime = new WorkerRuntime({ startTimeoutMs: 15_000 });
  table = buildRoutingTable({
    zones: [{ name: "example.com", enabled: true, supportSubaddress: false, dotInsensitive: false, catchAll: null, policy: DEFAULT_ZONE_POLICY }],
    rules: [
      { zone: "example.com", local: "fwd", id: "r1", name: "forward", enabled: true, action: { type: "forward", chains: [["dest@dest.test"]] } },
      { zone: "example.com", local: "wk", id: "r2", name: "worker", enabled: true, action: { type: "worker", script: "forwarder" } },
      { zone: "example.com", local: "bin", id: "r3", name: "drop", enabled: true, action: { type: "drop" } },
    ],
    verifiedDestinations: ["dest@dest.test"],
  });
  const limiter = new InvocationLimiter({ maxRunning: 2 });
  const workers: WorkerGateway = {
    account: "default",
    deadlineMs: 30_000,
    load: async (_account, script) => (script === "forwarder" ? FORWARDER : null),
    admit: (ticket, waitMs) => limiter.acquire(ticket, waitMs),
    invoke: (definition, invocation, handlers, options) => runtime.invoke(definition, invocation, handlers, options),
    kv: () => new MapKvStore(),
    recordLogs: async () => undefined,
    routing: () => table,
  };
  core = createMailCore({
    deps: {
      hostname: HOST,
      authenticate: null,
      resolver: async () => {
        throw Object.assign(new Error("no such record"), { code: "ENOTFOUND" });
      },
      authTimeoutMs: 1000,
      sign: createMessageSigner({ keys, hostname: HOST }),
      srs,
      dispatcher: keepingDispatcher(kept),
      queue: null,
      workers,
    },
    routing: () => table,
    events: { record: async (rows) => void events.push(...rows) },
    logger: createLogger({ level: "error" }),
  });
});

after(async () => {
  await runtime.dispose();
  await dns.stop();
  await rm(keyDir, { recursive: true, force: true });
});

async function receive(rcpt: string, sender = "alice@sender.example", through: MailCore = core) {
  const planned = through.plan(rcpt, sender);
  assert.ok(planned.ok, planned.ok ? "" : planned.reply.line);
  const spool = new MessageSpool({ maxSize: 1_048_576 });
  await spool.write(SAMPLE_MESSAGE);
  try {
    return await through.receive({
      via: "smtp",
      started: Date.now(),
      sessionId: "s1",
      queueId: `s1.${rcpt}`,
      clientIp: "192.0.2.10",
      clientHelo: "client.sender.example",
      mailFrom: sender,
      recipients: [planned.recipient],
      secure: false,
      smtpUtf8: false,
      trusted: false,
      plan: planned.plan,
      spool,
      receivedAt: new Date(),
    });
  } finally {
    await spool.dispose();
  }
}

/** Verifies a dispatched copy the way the destination would: DKIM against the loopback DNS. */
async function dkimOf(bytes: Buffer): Promise<{ result: string; domain: string | undefined }[]> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([dns.address]);
  const result = await authenticate(bytes, { ip: "192.0.2.20", helo: HOST, sender: "x@example.com", mta: "dest.test", resolver: (name: string, type: string) => resolver.resolve(name, type) as never, disableArc: true });
  return result.dkim.results.map((entry) => ({ result: entry.status.result, domain: entry.signingDomain }));
}

describe("mail core", () => {
  it("has one visible step list per plan kind, each ending in the step that answers", () => {
    const names = Object.fromEntries(Object.entries(MESSAGE_STEPS).map(([kind, steps]) => [kind, steps.map((step) => step.name)]));
    assert.deepEqual(names, {
      forward: ["authenticate", "enforcePolicy", "score", "addTraceHeaders", "prepareForward", "dispatchForward"],
      "srs-return": ["authenticate", "enforcePolicy", "score", "addTraceHeaders", "prepareForward", "dispatchForward"],
      worker: ["authenticate", "enforcePolicy", "score", "addTraceHeaders", "runWorker"],
      drop: ["authenticate", "enforcePolicy", "score", "acceptDropped"],
    });
  });

  it("hands a rule's forward and a worker's forward() to the dispatcher through the same prepare-and-sign stage", { timeout: 60_000 }, async () => {
    kept.length = 0;
    const rule = await receive("fwd@example.com");
    const worker = await receive("wk@example.com");
    assert.match(rule.reply.line, /^250 2\.0\.0 /);
    assert.match(worker.reply.line, /^250 2\.0\.0 /);
    assert.equal(kept.length, 2, "one copy each, both through the dispatcher");
    for (const { request, bytes } of kept) {
      assert.deepEqual(request.chains, [["dest@dest.test"]]);
      assert.match(request.mailFrom, /^SRS0=[^@]+@mx\.mailroute\.test$/, "SRS envelope for both");
      assert.deepEqual(srs.reverse(request.mailFrom), { ok: true, address: "alice@sender.example" });
      assert.ok(bytes.subarray(0, 16).toString().startsWith("DKIM-Signature:"), "signature first");
      assert.ok(bytes.includes(`by ${HOST}`), "our Received header is in the copy");
      assert.deepEqual(await dkimOf(bytes), [{ result: "pass", domain: "example.com" }]);
    }
    // the worker's X- header sits under our signature, which covers it
    assert.match(kept[1]!.bytes.toString("latin1"), /^x-handled-by: forwarder\r\nReceived: /im);
    assert.notEqual(kept[0]!.request.fingerprint, kept[1]!.request.fingerprint, "a rule copy and a worker copy are different ledger entries");
  });

  it("starts the delivery ledger's read for a forward beside authentication, and hands that read to the dispatcher with the copy (issue 11)", async () => {
    const order: string[] = [];
    const handed: DispatchRequest[] = [];
    const reads: { fingerprint: string; view: Promise<LedgerView> }[] = [];
    const keeping = keepingDispatcher([]);
    const reading: Dispatcher = {
      mode: "in-session",
      readAhead(fingerprint) {
        order.push("ledger read started");
        const view = Promise.resolve<LedgerView>({ accepted: new Set(), intents: new Map() });
        reads.push({ fingerprint, view });
        return view;
      },
      dispatch(request) {
        handed.push(request);
        return keeping.dispatch(request);
      },
    };
    const through = createMailCore({
      deps: {
        hostname: HOST,
        // mailauth itself, over the loopback DNS server, where the sender's SPF passes
        authenticate: async (input) => {
          order.push("authentication started");
          const result = await authenticateMessage(input);
          order.push("authentication done");
          return result;
        },
        resolver: createDnsTxtResolver({ servers: [dns.address] }),
        authTimeoutMs: 5000,
        sign: null,
        srs,
        dispatcher: reading,
        queue: null,
        workers: null,
      },
      routing: () => table,
      events: { record: async () => undefined },
      logger: createLogger({ level: "error" }),
    });
    dns.setRecords("sender.example", "TXT", ["v=spf1 ip4:192.0.2.10 -all"]);
    assert.match((await receive("fwd@example.com", undefined, through)).reply.line, /^250 /);
    assert.deepEqual(order, ["ledger read started", "authentication started", "authentication done"]);
    assert.equal(handed.length, 1);
    assert.equal(handed[0]!.fingerprint, reads[0]!.fingerprint, "read for the copy that was dispatched");
    assert.equal(handed[0]!.ledgerView, reads[0]!.view);
    // nothing to read ahead for a plan that dispatches no copy of its own
    order.length = 0;
    assert.match((await receive("bin@example.com", undefined, through)).reply.line, /^250 /);
    assert.deepEqual(order, ["authentication started", "authentication done"]);
  });

  it("records one event per recipient with the plan's action and the outcome", async () => {
    events.length = 0;
    await receive("bin@example.com");
    assert.equal(events.length, 1);
    assert.deepEqual([events[0]!.rcpt_to, events[0]!.zone, events[0]!.action, events[0]!.outcome, events[0]!.reply_code], ["bin@example.com", "example.com", "drop", "dropped", 250]);
  });

  it("answers without waiting for the events' write when given afterReply, which holds it until it lands (issue 11)", async () => {
    let land!: () => void;
    const landed = new Promise<void>((resolve) => {
      land = resolve;
    });
    const written: MailEvent[] = [];
    const afterReply = new PendingWrites();
    const dispatched: Kept[] = [];
    const through = createMailCore({
      deps: { hostname: HOST, authenticate: null, resolver: async () => [], authTimeoutMs: 1000, sign: null, srs, dispatcher: keepingDispatcher(dispatched), queue: null, workers: null, afterReply },
      routing: () => table,
      events: {
        record: async (rows) => {
          await landed;
          written.push(...rows);
        },
      },
      logger: createLogger({ level: "error" }),
    });
    try {
      const answered = await Promise.race([receive("bin@example.com", undefined, through).then(({ reply }) => reply.line), sleep(2000).then(() => "still waiting for the write")]);
      assert.match(answered, /^250 /);
      assert.equal(written.length, 0);
      assert.equal(afterReply.size, 1, "the write is held where shutdown and the activity log wait for it");
    } finally {
      land();
    }
    await afterReply.settled();
    assert.deepEqual(written.map((event) => event.rcpt_to), ["bin@example.com"]);
    // a forward's copy carries it to the relay, for the ledger's acceptance writes
    assert.match((await receive("fwd@example.com", undefined, through)).reply.line, /^250 /);
    assert.equal(dispatched[0]!.request.afterReply, afterReply);
    await afterReply.settled();
  });

  it("logs a recording that fails after the reply, and lets no rejection go unhandled", async () => {
    const lines: string[] = [];
    const afterReply = new PendingWrites();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const through = createMailCore({
        deps: { hostname: HOST, authenticate: null, resolver: async () => [], authTimeoutMs: 1000, sign: null, srs, dispatcher: keepingDispatcher([]), queue: null, workers: null, afterReply },
        routing: () => table,
        events: { record: async () => Promise.reject(new Error("recorder broke")) },
        logger: createLogger({ level: "error", stream: new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString("utf8")), done()) }) }),
      });
      assert.match((await receive("bin@example.com", undefined, through)).reply.line, /^250 /);
      await afterReply.settled();
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(lines.some((line) => line.includes('"event":"event_record_failed"') && line.includes("recorder broke")), lines.join(""));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("plans an SRS return only for the null sender, and refuses a forged one at RCPT with the reason", () => {
    const address = srs.forward("carol@far.example");
    const returned = core.plan(address, "");
    assert.ok(returned.ok);
    assert.equal(returned.plan.kind, "srs-return");
    assert.deepEqual(returned.ok && returned.plan.kind === "srs-return" ? returned.plan.chains : null, [["carol@far.example"]]);
    const fromSomeone = core.plan(address, "spammer@bad.example");
    assert.ok(!fromSomeone.ok);
    assert.equal(fromSomeone.reason, "srs-not-null-sender");
    const forged = core.plan(address.replace(/^SRS0=..../, "SRS0=AAAA"), "");
    assert.ok(!forged.ok);
    assert.match(forged.reply.line, /^550 5\.7\.1 /);
  });

  it("names our zone on a refusal at RCPT (the zone's owner sees it), and none for a domain that is not ours", () => {
    const unknown = core.plan("nobody@example.com", "a@b.example");
    assert.ok(!unknown.ok);
    assert.deepEqual([unknown.reason, unknown.zone, unknown.reply.responseCode], ["unknown-recipient", "example.com", 550]);
    const relay = core.plan("someone@elsewhere.example", "a@b.example");
    assert.ok(!relay.ok);
    assert.deepEqual([relay.reason, relay.zone], ["relay-denied", null]);
  });

  it("gives recipients of the same rule one plan key and different rules different keys", () => {
    const a = core.plan("fwd@example.com", "a@b.example");
    const b = core.plan("FWD@example.com", "a@b.example");
    const c = core.plan("bin@example.com", "a@b.example");
    assert.ok(a.ok && b.ok && c.ok);
    assert.equal(a.plan.key, b.plan.key);
    assert.notEqual(a.plan.key, c.plan.key);
  });
});
