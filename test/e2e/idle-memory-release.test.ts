/**
 * `mailroute start` gives memory back once it is quiet after a large message
 * (src/cli/idle-memory-release.ts, --release-idle-memory): the real command in a child process,
 * with the collection exposed as the launcher exposes it (--expose-gc), relaying one 24 MiB
 * message to a real sink. What it reports is read from its own log line; how much it frees is
 * measured by the benchmarks, not asserted here, but for the start-up release's file pages, which
 * are most of what it gives back (over 8 MiB of the Node binary's). With --release-idle-memory
 * false it does none.
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
import { freePort } from "../support/free-port.ts";
import { MailrouteProcess, type LogLine } from "../support/mailroute-process.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.ts";

const MESSAGE_BYTES = 24 * 1024 * 1024;
/** Bounds the wait for the release: a quiet second to notice, on a loaded machine many more. */
const RELEASE_WAIT_MS = 60_000;

/** A message of about `bytes`, its body base64-like lines, as a large attachment would be. */
function largeMessage(bytes: number): string {
  const line = `${"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3".slice(0, 76)}\r\n`;
  return testMessage({ from: "sender@origin.test", to: "big@memory.test", subject: "large", body: line.repeat(Math.floor(bytes / line.length)) });
}

async function relay(port: number, message: string): Promise<number> {
  const { client } = await SmtpTestClient.connect(port);
  try {
    await client.envelope("sender@origin.test", ["big@memory.test"]);
    return (await client.data(message)).code;
  } finally {
    await client.quit();
  }
}

async function releaseLine(service: MailrouteProcess, deadlineMs: number, stage?: string): Promise<LogLine | undefined> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const line = service.logs.find((entry) => entry.event === "memory_released" && (stage === undefined || entry.stage === stage));
    if (line !== undefined || Date.now() >= deadline) return line;
    await sleep(100);
  }
}

describe("mailroute start: idle memory release", () => {
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let dir: string;
  const services: MailrouteProcess[] = [];
  const nodeOptions = process.env.NODE_OPTIONS;

  before(async () => {
    // the launcher's --expose-gc (bin/service-node-flags.js); MailrouteProcess passes the
    // environment on, and this file runs in a process of its own
    process.env.NODE_OPTIONS = `${nodeOptions ?? ""} --expose-gc`.trim();
    dns = await startDnsServer();
    sink = await startSmtpSink();
    dns.setRecords("origin.test", "TXT", ["v=spf1 ip4:127.0.0.0/8 -all"]);
    dir = mkdtempSync(join(tmpdir(), "mailroute-memory-release-"));
  });

  after(async () => {
    for (const service of services) await service.stop();
    await sink?.stop();
    await dns?.stop();
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function startService(name: string, extra: Record<string, string>): Promise<MailrouteProcess> {
    const dataDir = join(dir, name);
    const store = await openStore({ dataDir });
    try {
      const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
      await config.zones.create("memory.test");
      await config.addresses.create("inbox@sink.test", { verified: true });
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "big@memory.test" }], actions: [{ type: "forward", value: ["inbox@sink.test"] }] });
    } finally {
      await store.close();
    }
    const service = new MailrouteProcess(
      {
        "data-dir": dataDir,
        "http-host": "127.0.0.1",
        "http-port": String(await freePort()),
        hostname: "mx.memory.test",
        "dns-servers": dns.address,
        transport: `sink.test=127.0.0.1:${sink.port}`,
        "admin-token": "memory-admin-token",
        "log-level": "info",
        ...extra,
      },
      await freePort(),
    );
    services.push(service);
    await service.start();
    return service;
  }

  it("drops the pages start-up alone touched once quiet after start, then collects and trims once quiet after a 24 MiB message", async () => {
    const service = await startService("on", {});
    const started = await releaseLine(service, RELEASE_WAIT_MS, "start_up");
    assert.ok(started !== undefined, `no start-up memory_released line within ${RELEASE_WAIT_MS / 1000} s: ${service.logs.map((entry) => entry.event).join(", ")}`);
    assert.equal(typeof started.file_pages_ms, "number", "file pages dropped: madvise bound");
    assert.equal(started.collect_ms, null);
    assert.ok(typeof started.rss_before_mib === "number" && typeof started.rss_after_mib === "number");
    assert.ok(started.rss_after_mib < started.rss_before_mib - 8, `${started.rss_before_mib} → ${started.rss_after_mib} MiB`);
    assert.equal(await relay(service.port, largeMessage(MESSAGE_BYTES)), 250);
    const line = await releaseLine(service, RELEASE_WAIT_MS, "quiet");
    assert.ok(line !== undefined, `no memory_released line within ${RELEASE_WAIT_MS / 1000} s: ${service.logs.map((entry) => entry.event).join(", ")}`);
    assert.equal(typeof line.collect_ms, "number", "collected: gc() exposed");
    assert.equal(typeof line.trim_ms, "number", "trimmed: glibc's malloc_trim bound");
    assert.equal(typeof line.file_pages_ms, "number");
    assert.ok(typeof line.rss_before_mib === "number" && typeof line.rss_after_mib === "number");
    assert.ok(line.rss_after_mib < line.rss_before_mib, `${line.rss_before_mib} → ${line.rss_after_mib} MiB`);
    assert.ok(!service.logs.some((entry) => entry.event === "memory_release_failed"));
  });

  it("does none with --release-idle-memory false", async () => {
    const service = await startService("off", { "release-idle-memory": "false" });
    assert.equal(await relay(service.port, largeMessage(MESSAGE_BYTES)), 250);
    // several of the release's quiet seconds, the first test's release having come after ~1–2
    await sleep(5_000);
    assert.equal(await releaseLine(service, 0), undefined);
  });
});
