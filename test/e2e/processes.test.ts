/**
 * `mailroute start --processes 2` (issue 11), as an operator runs it: a real primary and two
 * real service processes on one SQLite data directory, SMTP over loopback to a real sink.
 *
 * The behaviour list: connections land on both processes; a rule added through the CLI while
 * it runs routes mail at both; /metrics (main port with the operator token, and
 * --metrics-port) counts the messages of both, whichever process answers; a service process
 * SIGKILLed is started again by the primary and no message that got a 250 is lost; the admin
 * token is generated and shown once.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { freePort } from "../support/free-port.ts";
import { MailrouteProcess, type LogLine } from "../support/mailroute-process.ts";
import { sendOnce } from "../support/retrying-sender.ts";
import type { Reply } from "../support/smtp-test-client.ts";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.ts";
import { testMessage } from "../support/smtp-test-client.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "mailroute.js");

async function until<T>(what: string, check: () => T | undefined | null | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = check();
    if (value !== undefined && value !== null && value !== false) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One GET on a fresh connection (no keep-alive), so successive calls may land on either process. */
function get(port: number, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const agent = new Agent({ keepAlive: false });
    const req = request({ host: "127.0.0.1", port, path, agent, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`GET ${path}: no answer within 15 s`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * An MTA's retry loop with its timeouts compressed: a connection that gets no final answer in
 * time counts as lost and the message is sent again. Needed because a connection the primary
 * was handing to a process at the moment it was killed is never greeted (node:cluster keeps
 * it, README "Performance"): a real sender gives up on it after its greeting timeout.
 */
async function sendLikeAnMta(port: number, rcpt: string, raw: string): Promise<Reply> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const sending = sendOnce(port, "friend@origin.test", rcpt, raw);
    sending.catch(() => undefined);
    const reply = await Promise.race([sending.catch(() => null), sleep(5_000).then(() => null)]);
    if (reply !== null && (reply.code < 400 || reply.code >= 500)) return reply;
    await sleep(100);
  }
  throw new Error(`${rcpt}: no final answer after 30 attempts`);
}

/** Sum of every sample of one metric in a Prometheus text exposition. */
function metricSum(text: string, name: string): number {
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

describe("mailroute start --processes 2", () => {
  let dataDir: string;
  let sink: SmtpSink;
  let server: MailrouteProcess;
  let httpPort: number;
  let metricsPort: number;
  const ready = (logs: LogLine[]) => logs.filter((line) => line.event === "process_ready");
  const acceptedBy = () => new Set(server.logs.filter((line) => line.event === "rcpt_accepted").map((line) => String(line.node_id)));

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "mailroute-processes-"));
    sink = await startSmtpSink();
    httpPort = await freePort();
    metricsPort = await freePort();
    server = new MailrouteProcess(
      {
        processes: "2",
        "data-dir": dataDir,
        "http-port": String(httpPort),
        "metrics-port": String(metricsPort),
        hostname: "mx.mailroute.test",
        transport: `dest.test=127.0.0.1:${sink.port}`,
        "dns-servers": "127.0.0.1:9",
        "log-level": "info",
      },
      await freePort(),
    );
    await server.start();
    await until("both service processes to be ready", () => ready(server.logs).length >= 2);
  });

  after(async () => {
    await server?.stop();
    await sink?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it("generates the admin token once, in the primary, and shows it once", () => {
    const generated = server.logs.filter((line) => line.event === "admin_token_generated");
    assert.equal(generated.length, 1);
    assert.equal(generated[0]!.node_id, undefined, "the primary shows it, not a service process");
    assert.match(readFileSync(join(dataDir, "admin-token"), "utf8"), /^mr_\S+\n$/);
  });

  it("runs two service processes, each with its own node id", () => {
    const processes = ready(server.logs);
    assert.equal(new Set(processes.map((line) => line.pid)).size, 2);
    const nodeIds = processes.map((line) => String(line.process_node_id)).sort();
    assert.match(nodeIds[0]!, /-p1$/);
    assert.match(nodeIds[1]!, /-p2$/);
    assert.equal(nodeIds[0]!.slice(0, -3), nodeIds[1]!.slice(0, -3), "one base node id");
  });

  it("gives back, in the primary as in each service process, the file pages its start-up touched once it is quiet", { timeout: 60_000 }, async () => {
    const startUp = () => server.logs.filter((line) => line.event === "memory_released" && line.stage === "start_up");
    await until("a start-up release in the primary and in both processes", () => startUp().length >= 3);
    const primary = startUp().filter((line) => line.node_id === undefined);
    assert.equal(primary.length, 1, `the primary's own, once: ${JSON.stringify(startUp())}`);
    const whose = startUp().map((line) => (line.node_id === undefined ? "primary" : String(line.node_id).slice(-3)));
    assert.deepEqual(whose.sort(), ["-p1", "-p2", "primary"], "each process its own, under its node id");
    assert.equal(typeof primary[0]!.file_pages_ms, "number");
    assert.ok(Number(primary[0]!.rss_after_mib) < Number(primary[0]!.rss_before_mib), `${primary[0]!.rss_before_mib} → ${primary[0]!.rss_after_mib} MiB`);
  });

  it("routes by a rule added through the CLI while running, at both processes, and /metrics counts both", { timeout: 90_000 }, async () => {
    const cli = (...args: string[]) => run(process.execPath, [BIN, ...args, "--data-dir", dataDir], { timeout: 30_000 });
    await cli("domain", "add", "procs.test");
    await cli("address", "add", "inbox@dest.test", "--verified");
    await cli("rule", "add", "hello@procs.test", "--forward", "inbox@dest.test");
    // each process reloads its routing table on its own (config version poll)
    await until("both processes to load the rule", () => {
      const loaded = server.logs.filter((line) => line.event === "routing_reloaded" && Number(line.rules) >= 1);
      return new Set(loaded.map((line) => line.node_id)).size >= 2;
    });
    const count = 12;
    for (let n = 0; n < count; n++) {
      const reply = await sendOnce(server.port, "friend@origin.test", "hello@procs.test", testMessage({ to: "hello@procs.test", messageId: `<procs-${n}@origin.test>` }));
      assert.equal(reply.code, 250, reply.line);
    }
    await sink.waitForMessages(count, 20_000);
    assert.equal(sink.messagesFor("inbox@dest.test").length, count);
    // round-robin: connections land on both processes
    assert.equal(acceptedBy().size, 2, `messages accepted by ${[...acceptedBy()].join(", ")}`);

    const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    for (let n = 0; n < 4; n++) {
      const main = await get(httpPort, "/metrics", token);
      assert.equal(main.status, 200, main.body);
      assert.equal(metricSum(main.body, "mailroute_messages_total"), count, "main port: the sum over both processes");
      const scraped = await get(metricsPort, "/metrics");
      assert.equal(scraped.status, 200, scraped.body);
      assert.equal(metricSum(scraped.body, "mailroute_messages_total"), count, "--metrics-port: the sum over both processes");
    }
    assert.equal((await get(httpPort, "/metrics")).status, 401, "the main port still wants the token");
    sink.reset();
  });

  it("starts a SIGKILLed service process again, and loses no message that got a 250", { timeout: 120_000 }, async () => {
    const victim = ready(server.logs).find((line) => String(line.process_node_id).endsWith("-p1"))!;
    const total = 30;
    let accepted = 0;
    let killed = false;
    const sent = Array.from({ length: total }, (_, n) => n);
    const senders = Array.from({ length: 5 }, async (_, lane) => {
      const attempts = [];
      for (const n of sent.filter((each) => each % 5 === lane)) {
        const reply = await sendLikeAnMta(server.port, "hello@procs.test", testMessage({ to: "hello@procs.test", messageId: `<kill-${n}@origin.test>` }));
        attempts.push({ n, reply });
        if (reply.code === 250 && ++accepted === 8 && !killed) {
          killed = true;
          process.kill(Number(victim.pid), "SIGKILL");
        }
      }
      return attempts;
    });
    const results = (await Promise.all(senders)).flat();
    assert.ok(killed, "the kill happened during the load");
    assert.equal(results.filter((result) => result.reply.code === 250).length, total, "every message is finally accepted");
    const restarted = await until("slot 1 to serve again", () =>
      ready(server.logs).find((line) => String(line.process_node_id).endsWith("-p1") && line.pid !== victim.pid),
    );
    assert.notEqual(restarted.pid, victim.pid);
    assert.ok(server.logs.some((line) => line.event === "process_exited" && line.pid === victim.pid && line.exit === "signal SIGKILL"));
    // every 250 means the sink has it (in-session relay): none lost
    await sink.waitForMessages(total, 20_000);
    const ids = new Set(sink.messages.map((message) => /Message-ID: <(kill-\d+)@/i.exec(message.text)?.[1]));
    for (let n = 0; n < total; n++) assert.ok(ids.has(`kill-${n}`), `kill-${n} reached the sink`);
    // and the new process serves: mail lands on both slots again
    const before = server.logs.length;
    for (let n = 0; n < 8; n++) assert.equal((await sendOnce(server.port, "friend@origin.test", "hello@procs.test", testMessage({ to: "hello@procs.test" }))).code, 250);
    const after = new Set(server.logs.slice(before).filter((line) => line.event === "rcpt_accepted").map((line) => String(line.node_id).slice(-3)));
    assert.deepEqual([...after].sort(), ["-p1", "-p2"]);
    assert.ok(existsSync(join(dataDir, "admin-token")));
  });
});

describe("mailroute start --processes 2 that cannot start", () => {
  it("reports a busy SMTP port once, in today's words, and exits non-zero", { timeout: 60_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mailroute-processes-busy-"));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MAILROUTE_")));
      const failure = await run(process.execPath, [BIN, "start", "--processes", "2", "--data-dir", dataDir, "--smtp-port", String(port), "--http-port", String(await freePort()), "--hostname", "mx.mailroute.test"], { timeout: 45_000, env }).then(
        () => null,
        (error: { code?: number; stderr?: string }) => error,
      );
      assert.ok(failure !== null, "the start failed");
      assert.notEqual(failure.code, 0);
      const said = (failure.stderr ?? "").split("\n").filter((line) => line.includes(`cannot listen for SMTP on 127.0.0.1:${port}: the port is already in use`));
      assert.equal(said.length, 1, failure.stderr);
      // the token was stored before the processes failed: it was shown, or no later start would show it
      assert.match(readFileSync(join(dataDir, "admin-token"), "utf8"), /^mr_\S+\n$/);
    } finally {
      blocker.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
