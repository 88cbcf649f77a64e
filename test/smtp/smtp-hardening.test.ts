/**
 * SMTP-side hardening (issue 8, items 8 and 10), against the real server over loopback:
 * content pipelined before the 354, over-long command lines, command floods inside a
 * transaction, the SMTP smuggling sequences, client disconnects in the middle of DATA, and the
 * activity log under a client guessing recipients.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { after, before, beforeEach, describe, it } from "node:test";
import { recentEvents } from "../../src/store/repositories/event-repository.ts";
import { createLogger } from "../../src/analytics/structured-log.ts";
import { JUNK_COMMAND_LIMIT } from "../../src/smtp/connection-guard.ts";
import { MAX_LONG_LINES } from "../../src/smtp/line-length-shim.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

interface LogLine {
  level: string;
  event: string;
  [field: string]: unknown;
}

/** Sends `input` in one write right after the greeting; resolves with everything the server said once it closes (or after timeoutMs). */
function rawSession(port: number, input: string | Buffer, timeoutMs = 4_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let text = "";
    let greeted = false;
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (!greeted) {
        greeted = true;
        socket.write(input);
      }
    });
    socket.on("error", () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, timeoutMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

function codes(text: string): string[] {
  return text
    .split("\r\n")
    .filter((line) => /^\d{3} /.test(line))
    .map((line) => line.slice(0, 3));
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("SMTP hardening", () => {
  let h: Harness;
  const logs: LogLine[] = [];

  before(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split("\n")) if (line !== "") logs.push(JSON.parse(line) as LogLine);
        callback();
      },
    });
    h = await startHarness({ destinations: ["dest.test"], settings: { "max-recipients": "5" }, overrides: { logger: createLogger({ stream, level: "debug" }) } });
    await h.config.zones.create("example.com");
    await h.config.addresses.create("owner@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.reload();
  });

  after(async () => h?.stop());

  beforeEach(() => {
    h.sinks["dest.test"]!.reset();
    logs.length = 0;
  });

  describe("pipelining", () => {
    it("answers two transactions whose content was sent before each 354, and the QUIT after them", async () => {
      const transaction = (n: number) => `MAIL FROM:<a@sender.test>\r\nRCPT TO:<hello@example.com>\r\nDATA\r\nSubject: pipelined ${n}\r\n\r\nbody ${n}\r\n.\r\n`;
      const { text, closed } = await rawSession(h.port, `EHLO client.test\r\n${transaction(1)}${transaction(2)}QUIT\r\n`);
      assert.deepEqual(codes(text), ["220", "250", "250", "250", "354", "250", "250", "250", "354", "250", "221"], text);
      assert.equal(closed, true, "the session ended with QUIT rather than stalling");
      assert.equal(h.sinks["dest.test"]!.messages.length, 2);
    });
  });

  describe("over-long command lines", () => {
    it("answers a 1 MB command line with 500 5.5.2 and goes on with the next command", async () => {
      const { client } = await SmtpTestClient.connect(h.port);
      await client.command("EHLO client.test");
      const reply = client.read();
      // in pieces, as a real client's packets arrive: most of the line comes after the reply
      for (let i = 0; i < 16; i++) client.write(`NOOP ${"x".repeat(64 * 1024)}`);
      client.write("\r\n");
      const long = await reply;
      assert.equal(long.code, 500, long.line);
      assert.equal(long.enhanced, "5.5.2");
      assert.equal((await client.command("NOOP")).code, 250, "the tail of the long line was not taken for a command");
      const { rcpts } = await client.envelope("a@sender.test", ["hello@example.com"]);
      assert.equal(rcpts[0]!.code, 250);
      assert.equal((await client.data(testMessage())).code, 250);
      await client.quit();
    });

    it("answers commands pipelined after a long line in the same packet, in order", async () => {
      const { text } = await rawSession(h.port, `EHLO client.test\r\nNOOP ${"y".repeat(20_000)}\r\nNOOP\r\nQUIT\r\n`);
      assert.deepEqual(codes(text), ["220", "250", "500", "250", "221"], text);
    });

    it(`closes the session with 421 4.7.0 at the ${MAX_LONG_LINES}th over-long line`, async () => {
      const { text, closed } = await rawSession(h.port, `EHLO client.test\r\n${`NOOP ${"z".repeat(17_000)}\r\n`.repeat(MAX_LONG_LINES)}NOOP\r\n`);
      assert.deepEqual(codes(text), ["220", "250", ...Array(MAX_LONG_LINES - 1).fill("500"), "421"], text);
      assert.equal(closed, true);
    });
  });

  describe("command floods inside a transaction", () => {
    it(`closes the session after ${JUNK_COMMAND_LIMIT} NOOPs with 421 4.7.0`, async () => {
      const noops = "NOOP\r\n".repeat(JUNK_COMMAND_LIMIT + 50);
      const { text, closed } = await rawSession(h.port, `EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<hello@example.com>\r\n${noops}`);
      const answered = codes(text);
      assert.deepEqual(answered, ["220", "250", "250", "250", ...Array(JUNK_COMMAND_LIMIT).fill("250"), "421"]);
      assert.match(text, /421 4\.7\.0 mx\.mailroute\.test: Too many NOOP/);
      assert.equal(closed, true);
    });

    it("counts a MAIL inside a transaction (always 503) as a junk command too", async () => {
      const mails = "MAIL FROM:<a@sender.test>\r\n".repeat(JUNK_COMMAND_LIMIT + 10);
      const { text, closed } = await rawSession(h.port, `EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\n${mails}`);
      assert.deepEqual(codes(text), ["220", "250", "250", ...Array(JUNK_COMMAND_LIMIT).fill("503"), "421"]);
      assert.equal(closed, true);
    });

    it("closes the session after 10 x --max-recipients RCPT commands in one transaction, duplicates included", async () => {
      // --max-recipients 5 here: the bound is max(100, 10 x 5) = 100
      const rcpts = "RCPT TO:<hello@example.com>\r\n".repeat(150);
      const { text, closed } = await rawSession(h.port, `EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\n${rcpts}`);
      assert.deepEqual(codes(text), ["220", "250", "250", ...Array(100).fill("250"), "421"]);
      assert.match(text, /Too many RCPT commands in one transaction \(more than 100\)/);
      assert.equal(closed, true);
    });
  });

  describe("bare CR and LF in DATA (SMTP smuggling)", () => {
    const sequences: [string, string][] = [
      ["\\n.\\n", "\n.\n"],
      ["\\r.\\r", "\r.\r"],
      ["\\r\\n.\\r", "\r\n.\r"],
      ["\\n.\\r\\n", "\n.\r\n"],
    ];
    for (const [name, sequence] of sequences) {
      it(`refuses a message containing ${name} with 554 5.5.2, forwards nothing, and the session goes on`, async () => {
        const smuggled = `Subject: smuggle\r\n\r\nbefore${sequence}MAIL FROM:<evil@smuggler.test>\r\nRCPT TO:<hello@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nSMUGGLED\r\n`;
        const { client } = await SmtpTestClient.connect(h.port);
        const { rcpts } = await client.envelope("a@sender.test", ["hello@example.com"]);
        assert.equal(rcpts[0]!.code, 250);
        assert.equal((await client.command("DATA")).code, 354);
        const reply = client.read();
        client.write(`${smuggled}.\r\n`);
        const refused = await reply;
        assert.equal(refused.code, 554, refused.line);
        assert.equal(refused.enhanced, "5.5.2");
        // the same session still delivers a clean message
        await client.command("MAIL FROM:<a@sender.test>");
        await client.command("RCPT TO:<hello@example.com>");
        assert.equal((await client.data(testMessage({ subject: "clean" }))).code, 250);
        await client.quit();
        const received = h.sinks["dest.test"]!.messages;
        assert.equal(received.length, 1);
        assert.doesNotMatch(received[0]!.text, /SMUGGLED/);
        assert.equal(received[0]!.from === "" || !/evil@smuggler/.test(received[0]!.from), true);
      });
    }

    it("finds a bare CR split from its missing LF across packets", async () => {
      const { client } = await SmtpTestClient.connect(h.port);
      await client.envelope("a@sender.test", ["hello@example.com"]);
      assert.equal((await client.command("DATA")).code, 354);
      const reply = client.read();
      client.write("Subject: split\r\n\r\nline one\r");
      await new Promise((resolve) => setTimeout(resolve, 50));
      client.write("line two\r\n.\r\n");
      assert.equal((await reply).code, 554);
      await client.quit();
    });
  });

  describe("logs", () => {
    it("logs a client that hangs up in the middle of DATA at info, never at error", async () => {
      const { client } = await SmtpTestClient.connect(h.port);
      await client.envelope("a@sender.test", ["hello@example.com"]);
      assert.equal((await client.command("DATA")).code, 354);
      client.write("Subject: cut\r\n\r\nhalf a messa");
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.destroy();
      await until(() => logs.some((line) => line.event === "data_failed"), "data_failed to be logged");
      const failed = logs.find((line) => line.event === "data_failed")!;
      assert.equal(failed.level, "info");
      assert.equal(failed.reason, "client-disconnected");
      assert.deepEqual(logs.filter((line) => line.level === "error"), []);
    });
  });

  describe("activity log under a client guessing recipients", () => {
    it("records one summary per session, not one row per refusal", async () => {
      const before = (await recentEvents(h.configStore.db, 1_000)).length;
      for (let session = 0; session < 3; session++) {
        const { client } = await SmtpTestClient.connect(h.port);
        await client.command("EHLO client.test");
        await client.command("MAIL FROM:<guesser@bad.test>");
        for (let i = 0; i < 21; i++) {
          const reply = await client.command(`RCPT TO:<guess${session}-${i}@example.com>`).catch(() => null);
          if (reply === null || reply.code === 421) break;
        }
        client.destroy();
      }
      await until(async () => (await recentEvents(h.configStore.db, 1_000)).length >= before + 3, "the summaries to be written");
      // give a wrong implementation the time to write more rows
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const events = (await recentEvents(h.configStore.db, 1_000)).slice(0, -before || undefined);
      const refusals = events.filter((event) => event.action === "refused");
      assert.equal(refusals.length, 3, `${refusals.length} refusal rows`);
      for (const event of refusals) {
        const detail = JSON.parse(event.detail) as { refused: number; reason: string; sample: unknown[]; reasons: Record<string, number> };
        assert.equal(detail.refused, 21);
        assert.equal(detail.sample.length, 5);
        assert.equal(detail.reason, "unknown-recipient");
        assert.match(event.rcpt_to, /^guess\d-0@example\.com$/, "the first refused recipient, so a search for it finds the row");
      }
    });
  });
});
