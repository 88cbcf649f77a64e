/**
 * The SMTP fuzzer: a real mailroute (the e2e harness: real DNS, real sinks, loopback only) fed
 * rounds of adversarial connections (fuzz-inputs.ts), checked after every round:
 *
 * - a control message from a trusted client still gets 250 and arrives at the sink;
 * - nothing carrying a bare CR or LF, or content smuggled after one, reached a destination;
 * - no error-level log line and no uncaught exception or unhandled rejection;
 * - RSS stays within `rssLimitMb` of where it started.
 *
 * Bounded: at most `maxRounds` rounds and `seconds` of fuzzing, each connection at most
 * CONNECTION_BUDGET_MS. Half the clients come from a trusted network, half from an untrusted
 * one (127.0.2.0/24 and 127.0.3.0/24: Linux answers all of 127/8 on loopback).
 */
import { randomInt } from "node:crypto";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";
import { INPUT_KINDS, nextInput, Random, SMUGGLED_MARKER, type FuzzInput, type InputKind } from "./fuzz-inputs.ts";

export interface FuzzOptions {
  seconds: number;
  maxRounds: number;
  /** Connections per round, run at once. */
  concurrency: number;
  seed?: number;
  rssLimitMb?: number;
  progress?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  rounds: number;
  inputs: number;
  inputsByKind: Record<InputKind, number>;
  bytesSent: number;
  controlMessages: number;
  baselineRssMb: number;
  peakRssMb: number;
  durationMs: number;
  failures: string[];
}

const CONNECTION_BUDGET_MS = 4_000;
const CONTROL_TIMEOUT_MS = 10_000;
const MB = 1024 * 1024;

async function runInput(port: number, input: FuzzInput, localAddress: string): Promise<number> {
  const socket = connect({ port, host: "127.0.0.1", localAddress, noDelay: true });
  socket.on("error", () => undefined);
  socket.on("data", () => undefined);
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  const budget = new Promise<void>((resolve) => setTimeout(resolve, CONNECTION_BUDGET_MS).unref());
  let sent = 0;
  const script = (async () => {
    // wait for the greeting: smtp-server refuses early talkers outright
    await Promise.race([new Promise((resolve) => socket.once("data", resolve)), closed]);
    for (const step of input.steps) {
      if (socket.destroyed) return;
      socket.write(step.bytes);
      sent += step.bytes.length;
      if (step.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, step.pauseMs));
    }
    if (!input.abort) await closed;
  })();
  await Promise.race([script, budget]);
  socket.destroy();
  await closed;
  return sent;
}

async function sendControl(h: Harness, round: number): Promise<string | null> {
  const subject = `control ${round} ${randomInt(1e9)}`;
  try {
    const { client, greeting } = await SmtpTestClient.connect(h.port);
    if (greeting.code !== 220) return `control ${round}: greeting ${greeting.line}`;
    const { rcpts } = await client.envelope("control@sender.test", ["hello@example.com"]);
    if (rcpts[0]!.code !== 250) return `control ${round}: RCPT ${rcpts[0]!.line}`;
    const reply = await client.data(testMessage({ subject }));
    await client.quit();
    if (reply.code !== 250) return `control ${round}: DATA ${reply.line}`;
  } catch (error) {
    return `control ${round}: ${(error as Error).message}`;
  }
  const deadline = Date.now() + CONTROL_TIMEOUT_MS;
  while (!h.sinks["dest.test"]!.messages.some((message) => message.text.includes(subject))) {
    if (Date.now() > deadline) return `control ${round}: accepted but not delivered within ${CONTROL_TIMEOUT_MS} ms`;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return null;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? randomInt(2 ** 31);
  const random = new Random(seed);
  const rssLimitMb = options.rssLimitMb ?? 400;
  const failures: string[] = [];
  const errorLogs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) {
        if (line.includes('"level":"error"')) errorLogs.push(line.slice(0, 500));
      }
      callback();
    },
  });
  const onUncaught = (error: unknown) => failures.push(`uncaught: ${(error as Error)?.stack ?? String(error)}`);
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);

  const h = await startHarness({
    destinations: ["dest.test"],
    settings: {
      "trusted-networks": "127.0.0.1/32,127.0.2.0/24",
      "smtp-timeout": "1000",
      "smtp-transaction-timeout": "2500",
      "smtp-min-data-rate": "2000",
      "max-message-size": String(2 * MB),
      "max-clients": String(Math.max(50, options.concurrency * 4)),
      "max-connections-per-ip": "4",
      "messages-per-minute": "600",
    },
    overrides: { logger: createLogger({ stream, level: "info" }) },
  });
  const inputsByKind = Object.fromEntries(INPUT_KINDS.map((kind) => [kind, 0])) as Record<InputKind, number>;
  let rounds = 0;
  let inputs = 0;
  let bytesSent = 0;
  let controlMessages = 0;
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const started = Date.now();
  try {
    await h.config.zones.create("example.com");
    await h.config.addresses.create("owner@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.reload();
    while (rounds < options.maxRounds && Date.now() - started < options.seconds * 1000 && failures.length === 0) {
      rounds++;
      h.sinks["dest.test"]!.reset();
      const batch = Array.from({ length: options.concurrency }, () => nextInput(random));
      const sent = await Promise.all(batch.map((input) => runInput(h.port, input, `127.0.${random.chance(0.5) ? 2 : 3}.${random.int(1, 250)}`)));
      for (const input of batch) inputsByKind[input.kind]++;
      inputs += batch.length;
      bytesSent += sent.reduce((sum, bytes) => sum + bytes, 0);

      const control = await sendControl(h, rounds);
      if (control === null) controlMessages++;
      else failures.push(control);
      for (const message of h.sinks["dest.test"]!.messages) {
        if (message.text.includes(SMUGGLED_MARKER)) failures.push(`round ${rounds}: smuggled content reached the destination (from <${message.from}>)`);
        if (/\r(?!\n)|(?<!\r)\n/.test(message.raw.toString("latin1"))) failures.push(`round ${rounds}: a message with a bare CR or LF reached the destination`);
      }
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (peakRss - baselineRss > rssLimitMb * MB) failures.push(`round ${rounds}: RSS grew by ${Math.round((peakRss - baselineRss) / MB)} MiB (limit ${rssLimitMb})`);
      if (errorLogs.length > 0) failures.push(...errorLogs.splice(0).map((line) => `round ${rounds}: error log ${line}`));
      // with --expose-gc the heap figure is live data only: a leak shows as steady growth
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      options.progress?.(`round ${rounds}: ${inputs} inputs, ${Math.round(bytesSent / 1024)} KiB sent, rss ${Math.round(memory.rss / MB)} MiB, heap ${Math.round(memory.heapUsed / MB)} MiB`);
    }
  } finally {
    clearInterval(sampler);
    await h.stop();
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUncaught);
  }
  if (errorLogs.length > 0) failures.push(...errorLogs.map((line) => `error log ${line}`));
  return {
    seed,
    rounds,
    inputs,
    inputsByKind,
    bytesSent,
    controlMessages,
    baselineRssMb: Math.round(baselineRss / MB),
    peakRssMb: Math.round(peakRss / MB),
    durationMs: Date.now() - started,
    failures,
  };
}
