import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { MessageSpool } from "../../src/delivery/message-spool.ts";
import { SrsRewriter } from "../../src/delivery/srs-rewriter.ts";
import type { DnsRecordResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { DEFAULT_ZONE_POLICY, EMPTY_ROUTING_TABLE } from "../../src/routing/routing-table.ts";
import { createInSessionDispatcher } from "../../src/mail/dispatcher.ts";
import type { MailDependencies } from "../../src/mail/mail-dependencies.ts";
import { newMessageContext, type MessageContext } from "../../src/mail/message-context.ts";
import { runWorker, type WorkerGateway } from "../../src/mail/worker-step.ts";
import { InvocationLimiter, type InvocationLease } from "../../src/workers/invocation-limiter.ts";
import { WorkerRuntime } from "../../src/workers/worker-runtime.ts";
import type { InvocationResult, WorkerDefinition } from "../../src/workers/worker-types.ts";
import { MapKvStore, workerDefinition } from "../workers/fake-host.ts";

const MIB = 1048576;
const runtime = new WorkerRuntime({ startTimeoutMs: 15_000 });
after(() => runtime.dispose());

const DROPPER = workerDefinition({ account: "acct", name: "dropper", bundle: "export default { email() {} };" });
const THROWER = workerDefinition({
  account: "acct",
  name: "thrower",
  bundle: `export default { email() { throw new Error("upstream refused API key sk_live_51HxQ for alice.private@example.net"); } };`,
});

interface Observed {
  deadlines: number[];
  logs: (InvocationResult["logs"][number] & { script: string })[];
}

/** The gateway as start-service wires it: the real limiter in front of the real runtime. */
function gatewayFor(limiter: InvocationLimiter, deadlineMs: number, observed: Observed): WorkerGateway {
  const definitions: WorkerDefinition[] = [DROPPER, THROWER];
  return {
    account: "acct",
    deadlineMs,
    load: async (_account, script) => definitions.find((definition) => definition.name === script) ?? null,
    admit: (ticket, waitMs) => limiter.acquire(ticket, waitMs),
    invoke(definition, invocation, handlers, options) {
      observed.deadlines.push(options.deadlineMs);
      return runtime.invoke(definition, invocation, handlers, options);
    },
    kv: () => new MapKvStore(),
    recordLogs: async (_account, script, logs) => {
      observed.logs.push(...logs.map((log) => ({ ...log, script })));
    },
    routing: () => EMPTY_ROUTING_TABLE,
  };
}

function dependencies(workers: WorkerGateway): MailDependencies & { workers: WorkerGateway } {
  const resolver: DnsRecordResolver = async () => {
    throw new Error("these tests resolve nothing");
  };
  return {
    hostname: "mx.mailroute.test",
    authenticate: null,
    resolver,
    authTimeoutMs: 1000,
    sign: null,
    srs: new SrsRewriter({ secrets: ["worker-step-test"], domain: "mx.mailroute.test" }),
    // the workers here never forward, reply or send: nothing is delivered
    dispatcher: createInSessionDispatcher({
      send: async () => {
        throw new Error("these tests deliver nothing");
      },
      ledger: { view: async () => ({ accepted: new Set(), intents: new Map() }), claim: async () => true, recordAccepted: async () => undefined, settle: async () => undefined },
      deadlineMs: 1000,
    }),
    queue: null,
    workers,
  };
}

/** A message of about `bytes` in a real spool (in memory up to 256 KiB, the rest in a file). */
async function messageContext(bytes: number, queueId: string): Promise<MessageContext> {
  const spool = new MessageSpool({ maxSize: 26_214_400 });
  const header = Buffer.from("From: alice@sender.example\r\nTo: bob@example.com\r\nSubject: big\r\nMessage-ID: <big@sender.example>\r\n\r\n");
  await spool.write(header);
  const block = Buffer.alloc(64 * 1024, "abcdefghij\r\n");
  for (let written = header.length; written + block.length <= bytes; written += block.length) await spool.write(block);
  const context = newMessageContext({
    sessionId: "session",
    queueId,
    clientIp: "127.0.0.1",
    clientHelo: "client.test",
    mailFrom: "alice@sender.example",
    recipients: ["bob@example.com"],
    secure: false,
    smtpUtf8: false,
    trusted: true,
    plan: { key: "worker:dropper", kind: "worker", script: "dropper", zone: "example.com", account: "acct", policy: DEFAULT_ZONE_POLICY },
    spool,
    receivedAt: new Date(),
  });
  context.prefix.push(Buffer.from("Received: from client.test by mx.mailroute.test; Tue, 1 Jul 2025 10:00:00 +0000\r\n"));
  return context;
}

async function holdOnlySlot(limiter: InvocationLimiter): Promise<InvocationLease> {
  const lease = await limiter.acquire({ account: "other", worker: "busy", bytes: 0 }, 0);
  assert.ok(lease);
  return lease;
}

describe("Email Worker pipeline step", () => {
  it("reads a waiting message into memory only once it is admitted", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 1 });
    const observed: Observed = { deadlines: [], logs: [] };
    const deps = dependencies(gatewayFor(limiter, 60_000, observed));
    const contexts = await Promise.all([1, 2, 3, 4].map((n) => messageContext(8 * MIB, `q${n}`)));
    try {
      // warm: the runtime process exists before memory is compared
      assert.equal((await runWorker(contexts[0]!, deps, "dropper")).reply.responseCode, 250);
      const held = await holdOnlySlot(limiter);
      const before = process.memoryUsage().arrayBuffers;
      const steps = contexts.map((context) => runWorker(context, deps, "dropper"));
      for (let turns = 0; limiter.waiting < contexts.length && turns < 10_000; turns++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(limiter.waiting, contexts.length, "every step is waiting for admission");
      const growth = process.memoryUsage().arrayBuffers - before;
      // the old step held two copies of each message while it waited: 64 MiB here
      assert.ok(growth < 8 * MIB, `waiting steps hold ${(growth / MIB).toFixed(1)} MiB of buffers`);
      held.release();
      const results = await Promise.all(steps);
      assert.deepEqual(results.map((result) => result.reply.line.slice(0, 9)), ["250 2.0.0", "250 2.0.0", "250 2.0.0", "250 2.0.0"]);
      assert.deepEqual(results.map((result) => result.report.outcome), ["dropped", "dropped", "dropped", "dropped"]);
    } finally {
      await Promise.all(contexts.map((context) => context.spool.dispose()));
    }
  });

  it("answers 451 4.3.2 with an incident id when no capacity comes within half the deadline, never running the worker", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 1 });
    const observed: Observed = { deadlines: [], logs: [] };
    const context = await messageContext(4096, "busy1");
    const held = await holdOnlySlot(limiter);
    try {
      const { reply, report } = await runWorker(context, dependencies(gatewayFor(limiter, 400, observed)), "dropper");
      assert.equal(reply.responseCode, 451);
      assert.equal(reply.enhanced, "4.3.2");
      const incident = /\(incident ([0-9a-f]{12})\)/.exec(reply.text)?.[1];
      assert.ok(incident, reply.line);
      assert.equal(report.outcome, "busy");
      assert.equal(report.incident, incident);
      assert.deepEqual(observed.deadlines, [], "the worker never ran");
      assert.ok(observed.logs.some((log) => log.script === "dropper" && log.message.startsWith(`mailroute: incident ${incident}: not run: no capacity`)), JSON.stringify(observed.logs));
      assert.equal(limiter.waiting, 0);
    } finally {
      held.release();
      await context.spool.dispose();
    }
  });

  it("counts the wait for admission against the deadline: the worker runs with what is left", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 1 });
    const observed: Observed = { deadlines: [], logs: [] };
    const context = await messageContext(4096, "wait1");
    const held = await holdOnlySlot(limiter);
    setTimeout(() => held.release(), 400);
    try {
      const { reply } = await runWorker(context, dependencies(gatewayFor(limiter, 20_000, observed)), "dropper");
      assert.equal(reply.responseCode, 250, reply.line);
      assert.equal(observed.deadlines.length, 1);
      assert.ok(observed.deadlines[0]! <= 20_000 - 350, `the worker got ${observed.deadlines[0]} ms after waiting about 400 ms of a 20000 ms deadline`);
    } finally {
      await context.spool.dispose();
    }
  });

  it("gives the sender a generic reason with an incident id, and the worker's own words to its log under that id", async () => {
    const limiter = new InvocationLimiter({ maxRunning: 4 });
    const observed: Observed = { deadlines: [], logs: [] };
    const context = await messageContext(4096, "fail1");
    try {
      const { reply, report } = await runWorker(context, dependencies(gatewayFor(limiter, 20_000, observed)), "thrower");
      assert.equal(reply.responseCode, 451);
      assert.equal(reply.enhanced, "4.3.0");
      assert.doesNotMatch(reply.line, /sk_live|alice\.private|upstream refused/);
      const incident = /\(incident ([0-9a-f]{12})\)/.exec(reply.text)?.[1];
      assert.ok(incident, reply.line);
      assert.equal(report.incident, incident);
      assert.match(report.error ?? "", /sk_live_51HxQ for alice\.private@example\.net/);
      const line = observed.logs.find((log) => log.message.startsWith(`mailroute: incident ${incident}: failed: `));
      assert.match(line?.message ?? "", /upstream refused API key sk_live_51HxQ/);
    } finally {
      await context.spool.dispose();
    }
  });
});
