/**
 * `npm run soak`: the kill -9 soak. Bounded load through a real `mailroute start` child process
 * that is SIGKILLed again and again and restarted on the same data directory, with senders that
 * retry like MTAs and a destination that answers 451 or drops the connection now and then.
 * Prints accepted, lost and duplicated messages (per destination, by Message-ID) with the cause
 * of each duplicate, as a table on stdout and JSON in bench/results/soak-latest.json.
 *
 * Half the kills come from a timer (anywhere in a transaction); the other half are armed and
 * fired by the destination right after it writes a 250 — the narrowest window, between the
 * destination's acceptance and mailroute's ledger commit. Zero lost is the requirement;
 * duplicates are reported, never asserted (at-least-once, README "Delivery guarantees").
 *
 *   npm run soak -- [--messages 200] [--kills 12] [--senders 4] [--seconds 240] [--seed 7] [--pace-ms 150]
 *
 * Everything runs on loopback; the load is bounded in count (`--messages`, `--kills`) and time
 * (`--seconds`, after which unfinished messages are reported as given up).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { createServices } from "../src/core/services.ts";
import { openStore } from "../src/store/open-store.ts";
import { startDnsServer } from "../test/support/dns-server.ts";
import { seededRandom, startFlakySink } from "../test/support/flaky-sink.ts";
import { MailrouteProcess } from "../test/support/mailroute-process.ts";
import { freePort, REPO_ROOT } from "./mailroute-server.ts";
import { formatTable } from "./report-table.ts";
import { soakFigures, type ExpectedDestinations, type Kill } from "./soak-report.ts";
import { sendWithRetries, type MessageRecord, type SoakMessage } from "./soak-sender.ts";

const { values: args } = parseArgs({
  options: {
    messages: { type: "string", default: "200" },
    kills: { type: "string", default: "12" },
    senders: { type: "string", default: "4" },
    seconds: { type: "string", default: "240" },
    seed: { type: "string", default: "7" },
    "relay-timeout": { type: "string", default: "8000" },
    "pace-ms": { type: "string", default: "150" },
  },
});
const MESSAGES = Number(args.messages);
const KILLS = Number(args.kills);
const SENDERS = Number(args.senders);
const SECONDS = Number(args.seconds);
const SEED = Number(args.seed);
const RELAY_TIMEOUT_MS = Number(args["relay-timeout"]);
/** Pause of each sender between messages, so the load spans the kills. */
const PACE_MS = Number(args["pace-ms"]);

// rule address → destination groups (a failover chain is one group: one copy among its members)
const EXPECTED: ExpectedDestinations = {
  "pair@soak.test": [["one@a.test"], ["two@b.test"]],
  "solo@soak.test": [["three@a.test"]],
  "chain@soak.test": [["four@a.test", "five@b.test"]],
};

function progress(text: string): void {
  process.stderr.write(`soak: ${text}\n`);
}

async function configure(dataDir: string): Promise<void> {
  const store = await openStore({ dataDir });
  try {
    const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
    await config.zones.create("soak.test");
    for (const address of ["one@a.test", "two@b.test", "three@a.test", "four@a.test", "five@b.test"]) await config.addresses.create(address, { verified: true });
    await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "pair@soak.test" }], actions: [{ type: "forward", value: ["one@a.test", "two@b.test"] }] });
    await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "solo@soak.test" }], actions: [{ type: "forward", value: ["three@a.test"] }] });
    await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "chain@soak.test" }], actions: [{ type: "forward", value: ["four@a.test:five@b.test"] }] });
  } finally {
    await store.close();
  }
}

function soakMessages(count: number): SoakMessage[] {
  const rcpts = Object.keys(EXPECTED);
  return Array.from({ length: count }, (_, index) => {
    const messageId = `<soak-${SEED}-${index}@origin.test>`;
    const rcpt = rcpts[index % rcpts.length]!;
    const raw = [`From: sender@origin.test`, `To: ${rcpt}`, `Subject: soak ${index}`, `Message-ID: ${messageId}`, `Date: ${new Date().toUTCString()}`, "", `soak message ${index}`, ""].join("\r\n");
    return { messageId, rcpt, from: "sender@origin.test", raw };
  });
}

async function main(): Promise<void> {
  const random = seededRandom(SEED);
  const dns = await startDnsServer();
  let killWindowArmed = false;
  const kills: Kill[] = [];
  let mailroute: MailrouteProcess | null = null;
  const sink = await startFlakySink({
    seed: SEED + 2,
    tempfailRate: 0.1,
    dropRate: 0.05,
    afterAccept() {
      // the narrowest crash window: the destination has the message, mailroute may not know yet
      if (killWindowArmed && mailroute?.killNow()) {
        killWindowArmed = false;
        kills.push({ at: Date.now(), kind: "after-250" });
      }
    },
  });
  for (const domain of ["a.test", "b.test"]) {
    dns.setRecords(domain, "MX", [{ exchange: `mx.${domain}`, priority: 10 }]);
    dns.setRecords(`mx.${domain}`, "A", ["127.0.0.1"]);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "mailroute-soak-"));
  await configure(dataDir);
  mailroute = new MailrouteProcess(
    {
      "data-dir": dataDir,
      "http-host": "127.0.0.1",
      "http-port": String(await freePort()),
      hostname: "mx.soak.test",
      "dns-servers": dns.address,
      "outbound-port": String(sink.port),
      "admin-token": "soak-admin-token",
      "relay-timeout": String(RELAY_TIMEOUT_MS),
      "log-level": "info",
    },
    await freePort(),
  );
  const started = Date.now();
  const giveUpAt = started + SECONDS * 1000;
  let finished = false;
  try {
    await mailroute.start();
    progress(`mailroute on 127.0.0.1:${mailroute.port}, sink on ${sink.port}, data in ${dataDir}`);

    // the supervisor: whatever ended the child, start another on the same data directory
    const supervisor = (async () => {
      while (!finished) {
        await mailroute.exited;
        if (finished) break;
        const restarting = Date.now();
        await mailroute.start().then(
          () => progress(`restarted in ${Date.now() - restarting} ms`),
          (error: unknown) => progress(`restart failed, retrying: ${(error as Error).message}`),
        );
      }
    })();

    // the killer: alternates timer kills and after-250 kills, each some seconds into a serving
    // child's life (a restart on this 2-core machine takes seconds, and is not what is tested)
    const killer = (async () => {
      for (let index = 0; kills.length < KILLS && !finished; index++) {
        while (!mailroute.ready && !finished) await sleep(50);
        await sleep(1500 + random() * 2500);
        if (finished) break;
        if (index % 2 === 0) {
          if (mailroute.killNow()) kills.push({ at: Date.now(), kind: "timer" });
        } else {
          killWindowArmed = true;
          // fired by the sink's next 250; if none comes soon, disarm and move on
          for (let waited = 0; killWindowArmed && waited < 5000 && !finished; waited += 20) await sleep(20);
          killWindowArmed = false;
        }
      }
    })();

    const queue = soakMessages(MESSAGES);
    const records: MessageRecord[] = [];
    const senderRandom = seededRandom(SEED + 1);
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
          records.push(await sendWithRetries(message, { port: mailroute!.port, giveUpAt, replyTimeoutMs: 30_000, random: senderRandom, minBackoffMs: 200, maxBackoffMs: 1000 }));
          if (records.length % 25 === 0) progress(`${records.length}/${MESSAGES} messages settled, ${kills.length} kills`);
          await sleep(senderRandom() * 2 * PACE_MS);
        }
      }),
    );
    finished = true;
    killWindowArmed = false;
    await killer;
    await mailroute.stop();
    await supervisor.catch(() => undefined);

    const figures = soakFigures(records, sink.copies, kills, EXPECTED);
    const ledgerEvents: Record<string, number> = {};
    for (const line of mailroute.logs) {
      if (typeof line.event === "string" && /ledger|held|maybe|intent/i.test(line.event)) ledgerEvents[line.event] = (ledgerEvents[line.event] ?? 0) + 1;
    }
    const seconds = (Date.now() - started) / 1000;
    const rows = [
      ["messages sent", figures.messages],
      ["accepted (250 from mailroute)", figures.accepted],
      ["refused (5xx)", figures.refused],
      ["given up (deadline)", figures.gaveUp],
      ["LOST (accepted, missing at a destination)", figures.lost.length],
      ["duplicate copies", figures.duplicates.reduce((sum, duplicate) => sum + duplicate.copies - 1, 0)],
      ["kills (timer / after a 250)", `${figures.kills.timer} / ${figures.kills["after-250"]}`],
      ["mailroute starts", mailroute.starts],
      ["sender attempts", Object.entries(figures.attempts).map(([result, count]) => `${result} ${count}`).join(", ")],
      ["held replies (451 forwarding held)", figures.heldReplies],
      ["sink verdicts", `250 ${sink.verdicts.accept}, 451 ${sink.verdicts.tempfail}, dropped ${sink.verdicts.drop}`],
      ["seconds", seconds.toFixed(1)],
    ];
    process.stdout.write(
      formatTable(`Soak: ${MESSAGES} messages, ${SENDERS} retrying senders, SIGKILL and restart (seed ${SEED})`, [{ title: "figure", align: "left" }, { title: "value" }], rows, [
        ...Object.entries(figures.duplicatesByDestination).map(([destination, count]) => `duplicates at ${destination}: ${count}`),
        ...Object.entries(figures.causes).map(([cause, count]) => `cause: ${cause}: ${count}`),
        ...figures.duplicates.map((duplicate) => `  ${duplicate.messageId} → ${duplicate.destination} ×${duplicate.copies}: ${duplicate.cause}`),
        ...figures.lost.map((entry) => `LOST ${entry.messageId} → ${entry.destination}`),
        ...Object.entries(ledgerEvents).map(([event, count]) => `mailroute logged ${event}: ${count}`),
      ]),
    );
    const resultsDir = join(REPO_ROOT, "bench", "results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, "soak-latest.json"), `${JSON.stringify({ args, seconds, figures, ledgerEvents }, null, 2)}\n`);
    process.exitCode = figures.lost.length === 0 ? 0 : 1;
  } finally {
    finished = true;
    await mailroute.stop().catch(() => undefined);
    await sink.stop();
    await dns.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
