/**
 * The abuse defences wired into a real smtp-server on loopback the way inbound-server.ts is
 * meant to wire them (the wiring below is the proposal; see the report of issue 3):
 *
 * - onConnect: ClientLimits.connectionOpened first and synchronously, then the DNSBL check;
 * - every command while no transaction is open: ClientLimits.commandBeforeMail, through a
 *   prototype hook like src/smtp/enhanced-code-shim.ts (smtp-server has no onCommand);
 * - onMailFrom: ClientLimits.messageStarted; onClose: ClientLimits.connectionClosed.
 *
 * Clients arrive through PROXY protocol headers so that one loopback test can be any address.
 */
import assert from "node:assert/strict";
import { Resolver } from "node:dns/promises";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { SMTPServer, type SMTPServerSession } from "../../src/smtp/smtp-server-package.ts";
import { ClientLimits, type LimitRefusal } from "../../src/inbound/client-limits.ts";
import { createDnsblChecker, type DnsblChecker, type LookupA } from "../../src/inbound/dnsbl-checker.ts";
import { installEnhancedCodeShim } from "../../src/smtp/enhanced-code-shim.ts";
import { replies } from "../../src/mail/reply-catalogue.ts";
import { installCommandHook } from "../../src/smtp/command-hook-shim.ts";
import { SmtpReply } from "../../src/mail/smtp-reply.ts";
import { createDnsTxtResolver } from "../../src/inbound/dns-txt-resolver.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { ProxiedSmtpClient } from "../support/proxied-smtp-client.ts";

// The production catalogue entries and command hook (src/smtp), wired here into a bare
// smtp-server so each defence is tested on its own; test/e2e/trust.test.ts covers the real server.
const proposedReplies = replies;

// ---- proposed wiring in src/smtp/inbound-server.ts ------------------------------------------

const HOP = "mx.mailroute.test";

function limitReply(refusal: LimitRefusal): SmtpReply {
  switch (refusal.limit) {
    case "connections":
      return new SmtpReply(proposedReplies.TOO_MANY_CONNECTIONS, { hop: HOP, client: refusal.client, limit: refusal.max });
    case "commands":
      return new SmtpReply(proposedReplies.TOO_MANY_COMMANDS, { hop: HOP, client: refusal.client, limit: refusal.max });
    case "messages":
      return new SmtpReply(proposedReplies.MESSAGE_RATE_LIMITED, { client: refusal.client, limit: refusal.max, seconds: Math.ceil((refusal.retryAfterMs ?? 60_000) / 1000) });
  }
}

interface LoggedEvent {
  event: string;
  [field: string]: unknown;
}

function createGuardedServer(limits: ClientLimits, dnsbl: DnsblChecker, log: (entry: LoggedEvent) => void): SMTPServer {
  installEnhancedCodeShim();
  const server = new SMTPServer({
    name: HOP,
    banner: "mailroute ESMTP",
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    socketTimeout: 10_000,
    // test device only: each test client states its address in a PROXY header
    useProxy: true,
    onConnect(session, callback) {
      // synchronously, before any await: a client that hangs up during the DNSBL lookup is
      // closed (onClose) before onConnect calls back, and must find its connection counted
      const admitted = limits.connectionOpened(session);
      if (!admitted.ok) {
        log({ event: "client_limited", session: session.id, client: session.remoteAddress, limit: admitted.limit });
        return callback(limitReply(admitted));
      }
      dnsbl.check(session.remoteAddress).then(
        (verdict) => {
          if (verdict.listed) {
            log({ event: "dnsbl_listed", session: session.id, client: session.remoteAddress, zone: verdict.zone, codes: verdict.codes });
            return callback(new SmtpReply(proposedReplies.DNSBL_LISTED, { client: session.remoteAddress, zone: verdict.zone, codes: verdict.codes.join(", ") }));
          }
          for (const failure of verdict.unavailable) log({ event: "dnsbl_unavailable", session: session.id, client: session.remoteAddress, ...failure });
          callback();
        },
        // check() does not reject; should it ever, the client is greeted (fail open)
        () => callback(),
      );
    },
    onMailFrom(_address, session, callback) {
      const admitted = limits.messageStarted(session);
      if (!admitted.ok) log({ event: "client_limited", session: session.id, client: session.remoteAddress, limit: admitted.limit });
      callback(admitted.ok ? null : limitReply(admitted));
    },
    onClose(session) {
      limits.connectionClosed(session);
    },
  });
  installCommandHook(server, function commandsBeforeMail(name, session) {
    // a transaction is open (MAIL admitted): its commands are bounded by RCPT and DATA limits
    if (session.envelope.mailFrom || name === "QUIT") return null;
    const admitted = limits.commandBeforeMail(session);
    if (admitted.ok) return null;
    log({ event: "client_limited", session: session.id, client: session.remoteAddress, limit: admitted.limit });
    return limitReply(admitted);
  });
  return server;
}

// ---- the tests --------------------------------------------------------------------------------

function lookupVia(server: TestDnsServer): LookupA {
  // the production resolver, used exactly as start-service wires the block-list checker
  const resolver = createDnsTxtResolver({ servers: [server.address], timeoutMs: 2_000, tries: 1 });
  return (name, options) => resolver(name, "A", options) as Promise<string[]>;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("abuse defences on a live SMTP server", () => {
  const clock = { now: 1_000_000 };
  const events: LoggedEvent[] = [];
  let dns: TestDnsServer;
  let limits: ClientLimits;
  let dnsbl: DnsblChecker;
  let server: SMTPServer;
  let port: number;

  before(async () => {
    dns = await startDnsServer();
    limits = new ClientLimits({ maxConnectionsPerIp: 3, messagesPerMinute: 2, maxCommandsBeforeMail: 5, maxTrackedClients: 1_000, now: () => clock.now });
    dnsbl = createDnsblChecker({ zones: ["bl.test"], lookupA: lookupVia(dns), timeoutMs: 500, cacheTtlMs: 60_000, maxCacheEntries: 500, now: () => clock.now });
    server = createGuardedServer(limits, dnsbl, (entry) => events.push(entry));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await dns?.stop();
  });

  it("refuses a listed IPv4 client at connect with 554 5.7.1 naming the list, and hangs up", async () => {
    dns.setRecords("66.113.0.203.bl.test", "A", ["127.0.0.2"]);

    const { client, greeting } = await ProxiedSmtpClient.connect(port, "203.0.113.66");

    assert.equal(greeting.line, "554 5.7.1 Service unavailable; client host [203.0.113.66] blocked using bl.test (127.0.0.2)");
    await client.closed;
    assert.ok(events.some((entry) => entry.event === "dnsbl_listed" && entry.client === "203.0.113.66" && entry.zone === "bl.test"));
  });

  it("refuses a listed IPv6 client the same way", async () => {
    dns.setRecords("6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.6.0.0.8.b.d.0.1.0.0.2.bl.test", "A", ["127.0.0.4"]);

    const { client, greeting } = await ProxiedSmtpClient.connect(port, "2001:db8:66::66");

    assert.equal(greeting.code, 554);
    assert.equal(greeting.enhanced, "5.7.1");
    assert.match(greeting.text, /client host \[2001:db8:66::66\] blocked using bl\.test \(127\.0\.0\.4\)/);
    await client.closed;
  });

  it("greets an unlisted client, and one whose block list does not answer (fail open, logged)", async () => {
    const unlisted = await ProxiedSmtpClient.connect(port, "203.0.113.67");
    assert.equal(unlisted.greeting.code, 220);
    await unlisted.client.quit();

    dns.delayFor("68.113.0.203.bl.test", 3_000);
    const slow = await ProxiedSmtpClient.connect(port, "203.0.113.68");
    assert.equal(slow.greeting.code, 220);
    assert.ok(events.some((entry) => entry.event === "dnsbl_unavailable" && entry.client === "203.0.113.68" && entry.reason === "timeout"));
    await slow.client.quit();
  });

  it("refuses the N+1th concurrent connection from one client with 421 4.7.0, and admits it again after one closes", async () => {
    const open = await Promise.all([1, 2, 3].map(() => ProxiedSmtpClient.connect(port, "203.0.113.20")));
    for (const { greeting } of open) assert.equal(greeting.code, 220);

    const fourth = await ProxiedSmtpClient.connect(port, "203.0.113.20");
    assert.equal(fourth.greeting.line, `421 4.7.0 ${HOP}: Too many connections from 203.0.113.20 (at most 3 at a time), try again later`);
    await fourth.client.closed;

    const other = await ProxiedSmtpClient.connect(port, "203.0.113.21");
    assert.equal(other.greeting.code, 220, "another client is not affected");
    await other.client.quit();

    const sessionsBefore = limits.openSessions;
    await open[0]!.client.quit();
    await until(() => limits.openSessions === sessionsBefore - 1, "the server to see the close");
    const again = await ProxiedSmtpClient.connect(port, "203.0.113.20");
    assert.equal(again.greeting.code, 220);
    for (const { client } of [...open.slice(1), again]) await client.quit();
  });

  it("counts an IPv6 client's whole /64 as one client", async () => {
    const open = await Promise.all(["2001:db8:20::1", "2001:db8:20::2", "2001:db8:20:0:ffff::3"].map((address) => ProxiedSmtpClient.connect(port, address)));
    for (const { greeting } of open) assert.equal(greeting.code, 220);

    const fourth = await ProxiedSmtpClient.connect(port, "2001:db8:20::4");
    assert.equal(fourth.greeting.code, 421);
    assert.match(fourth.greeting.text, /Too many connections from 2001:db8:20::\/64/);
    for (const { client } of open) await client.quit();
  });

  it("refuses a MAIL over the message rate with 451 4.7.1, and admits one again once the rate allows", async () => {
    const { client } = await ProxiedSmtpClient.connect(port, "198.51.100.7");
    assert.equal((await client.command("EHLO client.test")).code, 250);
    for (let i = 0; i < 2; i++) {
      assert.equal((await client.command("MAIL FROM:<alice@sender.test>")).code, 250);
      assert.equal((await client.command("RSET")).code, 250);
    }

    const refused = await client.command("MAIL FROM:<alice@sender.test>");
    assert.equal(refused.line, "451 4.7.1 Too much mail from 198.51.100.7 (at most 2 messages a minute), try again in 30 seconds");

    clock.now += 30_000;
    assert.equal((await client.command("MAIL FROM:<alice@sender.test>")).code, 250);
    await client.quit();
  });

  it("closes a session that sends too many commands before MAIL with 421 4.7.0", async () => {
    const { client } = await ProxiedSmtpClient.connect(port, "198.51.100.8");
    assert.equal((await client.command("EHLO client.test")).code, 250);
    for (let i = 0; i < 4; i++) assert.equal((await client.command("NOOP")).code, 250);

    const refused = await client.command("NOOP");

    assert.equal(refused.line, `421 4.7.0 ${HOP}: Too many commands before MAIL from 198.51.100.8 (at most 5), closing connection`);
    await client.closed;
  });

  it("keeps its tables bounded after 10,000 distinct clients", async () => {
    const addresses = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? `198.18.${(i >> 8) & 255}.${i & 255}` : `2001:db8:${i.toString(16)}:1::25`));
    const greetings = new Map<number, number>();
    let next = 0;
    // 250 clients at a time: smtp-server holds every greeting back 100 ms (early-talker check)
    await Promise.all(
      Array.from({ length: 250 }, async () => {
        while (next < addresses.length) {
          const { client, greeting } = await ProxiedSmtpClient.connect(port, addresses[next++]!);
          greetings.set(greeting.code, (greetings.get(greeting.code) ?? 0) + 1);
          client.destroy();
          await client.closed;
        }
      }),
    );
    await until(() => limits.openSessions === 0 && server.connections.size === 0, "every session to close");

    assert.deepEqual([...greetings], [[220, 10_000]]);
    assert.equal(limits.trackedClients, 1_000, "client table at its bound, not 10,000");
    assert.ok(dnsbl.cacheSize <= 500, `DNSBL cache ${dnsbl.cacheSize} within its bound`);
  });
});
