/**
 * The pre-greeting pause (greet-pause.ts): new clients must wait for the 220, early talkers get
 * smtp-server's 421, and a client that waited once is greeted at once afterwards — so returning
 * senders (every MTA opens a connection per message or per batch) no longer pay smtp-server's
 * fixed 100 ms per connection. Policy unit tests, then the real server on loopback.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { createGreetPause } from "../../src/smtp/greet-pause.ts";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";

describe("greet pause policy", () => {
  it("pauses a new client, not one that passed, until the memory expires", () => {
    let clock = 1_000;
    const pause = createGreetPause({ pauseMs: 100, rememberMs: 60_000, now: () => clock });
    assert.equal(pause.pauseFor("192.0.2.1"), 100);
    pause.settle("192.0.2.1", false);
    assert.equal(pause.pauseFor("192.0.2.1"), 0);
    assert.equal(pause.pauseFor("192.0.2.2"), 100, "another client is still new");
    clock += 60_000;
    assert.equal(pause.pauseFor("192.0.2.1"), 100, "remembered for rememberMs only");
  });

  it("forgets a client that talked early and never pauses trusted clients or when off", () => {
    const verdicts: string[] = [];
    const pause = createGreetPause({ pauseMs: 100, trusted: (address) => address === "10.0.0.1", onVerdict: (address, verdict) => verdicts.push(`${address} ${verdict}`) });
    pause.settle("192.0.2.1", false);
    pause.settle("192.0.2.1", true);
    assert.equal(pause.pauseFor("192.0.2.1"), 100);
    assert.equal(pause.pauseFor("10.0.0.1"), 0);
    assert.deepEqual(verdicts, ["192.0.2.1 passed", "192.0.2.1 talked-early"]);
    assert.equal(createGreetPause({ pauseMs: 0 }).pauseFor("192.0.2.1"), 0);
  });

  it("keeps at most maxRemembered clients, the least recently passed forgotten first", () => {
    const pause = createGreetPause({ pauseMs: 100, maxRemembered: 2 });
    for (const address of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) pause.settle(address, false);
    assert.equal(pause.remembered, 2);
    assert.equal(pause.pauseFor("192.0.2.1"), 100);
    assert.equal(pause.pauseFor("192.0.2.3"), 0);
  });
});

/** Connects; sends `say` at once (before any greeting) or only after the greeting; returns what the server said until it closed or `lines` replies came. */
function converse(port: number, say: string, when: "at-once" | "after-greeting", lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    const replies: string[] = [];
    let buffer = "";
    const done = () => {
      socket.destroy();
      resolve(replies);
    };
    socket.setTimeout(20_000, () => reject(new Error(`no reply; heard ${JSON.stringify(replies)}`)));
    socket.on("error", reject);
    if (when === "at-once") socket.on("connect", () => socket.write(say));
    socket.on("data", (chunk) => {
      buffer += chunk.toString();
      let end: number;
      while ((end = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line[3] === "-") continue;
        replies.push(line);
        if (replies.length === 1 && when === "after-greeting") socket.write(say);
        if (replies.length >= lines) return done();
      }
    });
    socket.on("close", done);
  });
}

describe("greet pause on the real server", () => {
  let h: Harness;
  before(async () => {
    // not trusted, or loopback would never be paused; generous limits so only the pause acts
    h = await startHarness({ settings: { "greet-pause": "1500", "trusted-networks": "none", "max-connections-per-ip": "50", "messages-per-minute": "1000" } });
  });
  after(async () => {
    await h?.stop();
  });

  it("refuses a new client that talks first, then greets one that waited at once on its next connection", async () => {
    const early = await converse(h.port, "EHLO bot.example\r\n", "at-once", 2);
    assert.match(early[0] ?? "", /^421 .*talk too soon/i, `a new client talking before the greeting is refused: ${JSON.stringify(early)}`);

    const patient = await converse(h.port, "EHLO patient.example\r\n", "after-greeting", 2);
    assert.match(patient[0] ?? "", /^220 /);
    assert.match(patient[1] ?? "", /^250 /);

    // now known to wait: greeted at once, so even a command sent without waiting is answered
    const returning = await converse(h.port, "EHLO patient.example\r\n", "at-once", 2);
    assert.match(returning[0] ?? "", /^220 /, `a client that passed is greeted without a pause: ${JSON.stringify(returning)}`);
    assert.match(returning[1] ?? "", /^250 /);
  });
});

describe("greet pause for trusted clients", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ settings: { "greet-pause": "1500" } });
  });
  after(async () => {
    await h?.stop();
  });

  it("never pauses a client in --trusted-networks (loopback by default)", async () => {
    const replies = await converse(h.port, "EHLO relay.internal\r\n", "at-once", 2);
    assert.match(replies[0] ?? "", /^220 /, JSON.stringify(replies));
    assert.match(replies[1] ?? "", /^250 /);
  });
});
