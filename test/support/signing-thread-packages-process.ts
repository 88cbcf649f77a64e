/**
 * Run as a child process by test/delivery/signing-pool.test.ts, with
 * `--import test/support/thread-packages-hook.ts`: starts a one-thread signing pool as the
 * service does (createSigningPool), has it DKIM-sign and ARC-seal one message, and prints one
 * JSON line: every module its signing thread loaded. A child of its own because the test
 * process cannot add a loader hook to threads it has already made.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BroadcastChannel } from "node:worker_threads";
import { createSigningPool } from "../../src/delivery/signing-pool.ts";
import { THREAD_MODULES } from "./thread-packages-hook.ts";

const loaded: { thread: string; url: string }[] = [];
const channel = new BroadcastChannel(THREAD_MODULES);
channel.onmessage = (event) => loaded.push((event as { data: { thread: string; url: string } }).data);
const keyDir = await mkdtemp(join(tmpdir(), "mailroute-thread-packages-"));
const pool = await createSigningPool({ keyDir, ed25519: true, hostname: "mx.route.example", threads: 1 });
try {
  const signed = await pool.sign({
    message: Buffer.from("From: Alice <alice@sender.example>\r\nTo: bob@route.example\r\nSubject: probe\r\n\r\nhello\r\n"),
    routingDomain: "route.example",
    arc: { status: { result: "none" }, i: 0 },
    authenticationResults: "mx.route.example; spf=pass smtp.mailfrom=sender.example",
  });
  // the last reports may still be on their way
  await new Promise((resolve) => setTimeout(resolve, 200));
  process.stdout.write(`${JSON.stringify({ signed: { dkim: signed.dkim.length, arc: signed.arc }, loaded })}\n`);
} finally {
  await pool.close();
  channel.close();
  await rm(keyDir, { recursive: true, force: true });
}
