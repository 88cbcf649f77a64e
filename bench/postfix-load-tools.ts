/**
 * Postfix's own test programs as the side-by-side benchmark's load and sink, so that mailroute
 * and Postfix are driven and drained by exactly the same C programs (and the load generator
 * costs little of the two shared cores):
 * - smtp-sink: accepts every message on a loopback port; its running counter (`-c`) tells how
 *   many messages arrived, which is how a run knows Postfix's queue has delivered;
 * - smtp-source: N sessions in parallel sending M messages of a given size, one message per
 *   connection as most senders do (no `-d`), each with its own Message-Id.
 *
 * Promises: every process is started with a time bound and killed (SIGKILL) at it; `stop`
 * ends the sink; nothing here listens on anything but 127.0.0.1.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { SMTP_SINK_BIN, SMTP_SOURCE_BIN } from "./postfix-forwarder.ts";

export interface PostfixSink {
  readonly port: number;
  /** Messages received so far (smtp-sink's "mesg=" counter). */
  readonly messages: number;
  /** Resolves once `count` messages have arrived, or false after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startPostfixSink(port: number): Promise<PostfixSink> {
  // -u: it refuses to run as root; 1024: listen backlog; -m: concurrent sessions it serves
  const child = spawn(SMTP_SINK_BIN, ["-c", "-u", "nobody", "-m", "1024", `127.0.0.1:${port}`, "1024"], { stdio: ["ignore", "pipe", "pipe"] });
  let messages = 0;
  let tail = "";
  let stderr = "";
  child.stdout!.setEncoding("latin1");
  child.stdout!.on("data", (text: string) => {
    // "sess=3 quit=3 mesg=4\r" per update; keep only the unfinished remainder
    tail += text;
    const matches = [...tail.matchAll(/mesg=(\d+)/g)];
    const last = matches.at(-1);
    if (last !== undefined) messages = Number(last[1]);
    tail = tail.slice(tail.lastIndexOf("\r") + 1);
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    stderr = (stderr + text).slice(-2000);
  });
  await waitForListening(port, child, () => stderr);
  return {
    port,
    get messages() {
      return messages;
    },
    async waitFor(count, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (messages < count) {
        if (performance.now() > deadline || child.exitCode !== null) return false;
        await sleep(5);
      }
      return true;
    },
    stop: () => stopProcess(child),
  };
}

export interface SourceRun {
  /** smtp-source's exit: 0, its code, or "killed" when the time bound cut it short. */
  exit: number | "killed";
  seconds: number;
  /** The last lines smtp-source printed (errors name the refused command). */
  output: string;
}

export interface SourceOptions {
  port: number;
  sessions: number;
  messages: number;
  /** Body bytes (smtp-source adds a ~150-byte header block). */
  bodyBytes: number;
  from: string;
  to: string;
  maxSeconds: number;
}

export function runSmtpSource(options: SourceOptions): Promise<SourceRun> {
  const argv = [
    "-s", String(options.sessions),
    "-m", String(options.messages),
    "-l", String(options.bodyBytes),
    "-f", options.from,
    "-t", options.to,
    "-S", "side-by-side",
    "-M", "client.origin.test",
    `127.0.0.1:${options.port}`,
  ];
  const started = performance.now();
  const child = spawn(SMTP_SOURCE_BIN, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (text: string) => {
    output = (output + text).slice(-1000);
  };
  child.stdout!.setEncoding("utf8").on("data", keep);
  child.stderr!.setEncoding("utf8").on("data", keep);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, options.maxSeconds * 1000);
  return new Promise((resolve, reject) => {
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ exit: killed ? "killed" : (code ?? -1), seconds: (performance.now() - started) / 1000, output: output.trim() });
    });
  });
}

async function waitForListening(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`smtp-sink exited (${child.exitCode}): ${stderr().trim()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`smtp-sink did not listen on 127.0.0.1:${port}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}
