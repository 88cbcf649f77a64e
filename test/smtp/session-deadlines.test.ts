/**
 * Slowloris (issue 8, item 7): deadlines per command, per transaction and for DATA, against the
 * real server. --smtp-timeout is 1.5 s here and smtp-server's own idle timeout alone would never
 * fire: every client below sends something more often than that.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { SessionDeadlines } from "../../src/smtp/session-deadlines.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

interface Dribbler {
  socket: Socket;
  /** Everything the server said. */
  heard(): string;
  /** Resolves when the server hangs up; rejects after timeoutMs. */
  closed(timeoutMs: number): Promise<void>;
  stop(): void;
}

/** Connects, waits for the greeting, sends `opening`, then one byte of `drip` every `everyMs` (at most 200 of them). */
function dribble(port: number, opening: string, drip: string, everyMs: number): Promise<Dribbler> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let text = "";
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    const ended = new Promise<void>((done) => socket.on("close", () => done()));
    socket.on("error", () => undefined);
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      const first = text === "";
      text += chunk.toString();
      if (!first) return;
      socket.write(opening);
      timer = setInterval(() => {
        if (socket.destroyed || sent >= 200) return clearInterval(timer);
        socket.write(drip[sent++ % drip.length]!);
      }, everyMs);
      resolve({
        socket,
        heard: () => text,
        closed: (timeoutMs) =>
          Promise.race([ended, new Promise<void>((_, fail) => setTimeout(() => fail(new Error(`still connected after ${timeoutMs} ms; heard: ${JSON.stringify(text)}`)), timeoutMs).unref())]),
        stop() {
          clearInterval(timer);
          socket.destroy();
        },
      });
    });
  });
}

describe("session deadlines", () => {
  let h: Harness;
  const open: Dribbler[] = [];

  before(async () => {
    h = await startHarness({
      destinations: ["dest.test"],
      settings: { "smtp-timeout": "1500", "smtp-transaction-timeout": "4000", "smtp-min-data-rate": "200", "max-clients": "15" },
    });
    await h.config.zones.create("example.com");
    await h.config.addresses.create("owner@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.reload();
  });

  after(async () => {
    for (const dribbler of open) dribbler.stop();
    await h?.stop();
  });

  beforeEach(() => h.sinks["dest.test"]!.reset());

  it("cuts off 15 clients that trickle one byte at a time into a command with 421 4.4.2, freeing their slots", async () => {
    const clients = await Promise.all(Array.from({ length: 15 }, () => dribble(h.port, "EHLO ", "slowloris.example", 200)));
    open.push(...clients);
    const full = await SmtpTestClient.connect(h.port);
    assert.equal(full.greeting.code, 421, "every slot is taken while they trickle");
    full.client.destroy();

    await Promise.all(clients.map((client) => client.closed(8_000)));
    for (const client of clients) assert.match(client.heard(), /\r\n421 4\.4\.2 mx\.mailroute\.test: Timeout: no complete command within 1\.5 seconds/);

    const { client, greeting } = await SmtpTestClient.connect(h.port);
    assert.equal(greeting.code, 220, "a new client gets a slot");
    await client.envelope("a@sender.test", ["hello@example.com"]);
    assert.equal((await client.data(testMessage())).code, 250);
    await client.quit();
  });

  it("cuts off a client that sends a complete NOOP every second but never DATA (transaction deadline)", async () => {
    const client = await dribble(h.port, "EHLO client.test\r\n", "NOOP\r\n", 160);
    open.push(client);
    await client.closed(8_000);
    assert.match(client.heard(), /\r\n421 4\.4\.2 mx\.mailroute\.test: Timeout: no DATA within 4 seconds/);
    assert.ok(!/421 4\.4\.2 .*no complete command/.test(client.heard()), "each command came in time");
  });

  it("cuts off message data that arrives below --smtp-min-data-rate", async () => {
    const client = await dribble(h.port, "EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<hello@example.com>\r\nDATA\r\n", "Subject: slow\r\n\r\nx", 100);
    open.push(client);
    await client.closed(8_000);
    assert.match(client.heard(), /354 [^\r]*\r\n421 4\.4\.2 mx\.mailroute\.test: Timeout: message data slower than 200 bytes a second/);
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("does not count the server's own time: a relay slower than --smtp-timeout still answers 250, and the session goes on", async () => {
    h.sinks["dest.test"]!.stallData(2_500);
    const { client } = await SmtpTestClient.connect(h.port);
    await client.envelope("a@sender.test", ["hello@example.com"]);
    assert.equal((await client.data(testMessage())).code, 250);
    assert.equal((await client.command("NOOP")).code, 250);
    await client.quit();
  });
});

describe("sessions active now (what signs a copy on the SMTP thread, signing-pool.ts signHere)", () => {
  it("counts the open sessions that sent a command or were answered within the window, not those holding a connection idle", () => {
    let now = 1_000_000;
    const deadlines = new SessionDeadlines({ commandMs: 300_000, transactionMs: 600_000, minDataRate: 500 }, { hostname: "mx.test", logger: silentLogger, find: () => null, now: () => now });
    try {
      deadlines.opened("idle", "192.0.2.1");
      deadlines.opened("sending", "192.0.2.2");
      deadlines.opened("answered", "192.0.2.3");
      assert.equal(deadlines.activeWithin(100), 3, "a greeting counts as activity");
      now += 5_000;
      assert.equal(deadlines.activeWithin(100), 0);
      deadlines.command("sending");
      now += 40;
      deadlines.messageAnswered("answered");
      now += 50;
      assert.equal(deadlines.activeWithin(100), 2, "the idle one holds its connection and nothing else");
      now += 30;
      assert.equal(deadlines.activeWithin(100), 1, "the command 120 ms ago is out of the window, the answer 80 ms ago in it");
      deadlines.closed("answered");
      assert.equal(deadlines.activeWithin(100), 0, "a closed session does not count");
    } finally {
      deadlines.stop();
    }
  });
});
