import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClientLimits, type ClientLimitsOptions, type ClientSession } from "../../src/inbound/client-limits.ts";

let sessionCounter = 0;
function session(remoteAddress: string): ClientSession {
  return { id: `s${++sessionCounter}`, remoteAddress };
}

function setup(options: Partial<ClientLimitsOptions> = {}) {
  const clock = { now: 1_000_000 };
  const limits = new ClientLimits({ maxConnectionsPerIp: 3, messagesPerMinute: 6, maxCommandsBeforeMail: 5, now: () => clock.now, ...options });
  return { limits, clock };
}

describe("client limits", () => {
  describe("concurrent connections per client", () => {
    it("admits up to the limit and refuses the next connection from that client, naming it", () => {
      const { limits } = setup();
      for (let i = 0; i < 3; i++) assert.deepEqual(limits.connectionOpened(session("192.0.2.1")), { ok: true });
      assert.deepEqual(limits.connectionOpened(session("192.0.2.1")), { ok: false, limit: "connections", max: 3, client: "192.0.2.1" });
      assert.deepEqual(limits.connectionOpened(session("192.0.2.2")), { ok: true }, "another client is not affected");
    });

    it("admits again once a connection closes", () => {
      const { limits } = setup();
      const open = [session("192.0.2.1"), session("192.0.2.1"), session("192.0.2.1")];
      for (const s of open) limits.connectionOpened(s);
      limits.connectionClosed(open[0]!);
      assert.deepEqual(limits.connectionOpened(session("192.0.2.1")), { ok: true });
    });

    it("ignores closing a refused connection, closing twice, and closing a session it never saw", () => {
      const { limits } = setup();
      for (let i = 0; i < 3; i++) limits.connectionOpened(session("192.0.2.1"));
      const refused = session("192.0.2.1");
      assert.equal(limits.connectionOpened(refused).ok, false);
      limits.connectionClosed(refused);
      limits.connectionClosed(refused);
      limits.connectionClosed(session("192.0.2.1"));
      assert.equal(limits.connectionOpened(session("192.0.2.1")).ok, false, "still three open");
      assert.equal(limits.openSessions, 3);
    });

    it("counts an IPv4-mapped IPv6 peer as its IPv4 address", () => {
      const { limits } = setup();
      for (let i = 0; i < 3; i++) limits.connectionOpened(session("::ffff:192.0.2.1"));
      assert.equal(limits.connectionOpened(session("192.0.2.1")).ok, false);
    });

    it("counts IPv6 clients per /64", () => {
      const { limits } = setup();
      limits.connectionOpened(session("2001:db8:1:2::a"));
      limits.connectionOpened(session("2001:db8:1:2:ffff:ffff:ffff:ffff"));
      limits.connectionOpened(session("2001:DB8:1:2:0:0:0:c"));
      assert.deepEqual(limits.connectionOpened(session("2001:db8:1:2:1234::d")), { ok: false, limit: "connections", max: 3, client: "2001:db8:1:2::/64" });
      assert.equal(limits.connectionOpened(session("2001:db8:1:3::a")).ok, true, "the next /64 is another client");
      assert.equal(limits.trackedClients, 2);
    });

    it("counts IPv6 clients per configured prefix", () => {
      const { limits } = setup({ ipv6PrefixBits: 48 });
      for (const address of ["2001:db8:1:2::a", "2001:db8:1:3::a", "2001:db8:1:ffff::a"]) limits.connectionOpened(session(address));
      assert.deepEqual(limits.connectionOpened(session("2001:db8:1::1")), { ok: false, limit: "connections", max: 3, client: "2001:db8:1::/48" });
    });
  });

  describe("messages per minute", () => {
    it("admits a burst of messagesPerMinute, then refuses with the time until the next one", () => {
      const { limits } = setup();
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      for (let i = 0; i < 6; i++) assert.deepEqual(limits.messageStarted(s), { ok: true }, `message ${i + 1}`);
      assert.deepEqual(limits.messageStarted(s), { ok: false, limit: "messages", max: 6, client: "192.0.2.1", retryAfterMs: 10_000 });
    });

    it("admits one more message per 60 s / messagesPerMinute, and a refused attempt costs nothing", () => {
      const { limits, clock } = setup();
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      for (let i = 0; i < 6; i++) limits.messageStarted(s);
      clock.now += 5_000;
      assert.equal(limits.messageStarted(s).ok, false);
      clock.now += 5_000;
      assert.equal(limits.messageStarted(s).ok, true);
      assert.equal(limits.messageStarted(s).ok, false);
    });

    it("shares one budget across a client's connections, and keeps it after they close", () => {
      const { limits } = setup();
      const first = session("192.0.2.1");
      limits.connectionOpened(first);
      for (let i = 0; i < 3; i++) limits.messageStarted(first);
      limits.connectionClosed(first);
      const second = session("192.0.2.1");
      limits.connectionOpened(second);
      for (let i = 0; i < 3; i++) assert.equal(limits.messageStarted(second).ok, true);
      assert.equal(limits.messageStarted(second).ok, false, "reconnecting does not refill the bucket");
      assert.equal(limits.messageStarted(session("192.0.2.2")).ok, true, "another client has its own");
    });

    it("refills to at most messagesPerMinute however long the client was away", () => {
      const { limits, clock } = setup();
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      clock.now += 3_600_000;
      for (let i = 0; i < 6; i++) assert.equal(limits.messageStarted(s).ok, true);
      assert.equal(limits.messageStarted(s).ok, false);
    });
  });

  describe("commands before MAIL", () => {
    it("admits maxCommandsBeforeMail commands and refuses the next, naming the client", () => {
      const { limits } = setup();
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      for (let i = 0; i < 5; i++) assert.deepEqual(limits.commandBeforeMail(s), { ok: true });
      assert.deepEqual(limits.commandBeforeMail(s), { ok: false, limit: "commands", max: 5, client: "192.0.2.1" });
    });

    it("starts counting again when a MAIL is admitted", () => {
      const { limits } = setup();
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      for (let i = 0; i < 5; i++) limits.commandBeforeMail(s);
      assert.equal(limits.messageStarted(s).ok, true);
      for (let i = 0; i < 5; i++) assert.equal(limits.commandBeforeMail(s).ok, true);
    });

    it("keeps counting through MAIL commands refused by the message rate", () => {
      const { limits } = setup({ messagesPerMinute: 1 });
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      limits.messageStarted(s);
      for (let i = 0; i < 5; i++) {
        limits.commandBeforeMail(s); // the integrator reports the MAIL command itself…
        assert.equal(limits.messageStarted(s).ok, false); // …which the rate then refuses
      }
      assert.equal(limits.commandBeforeMail(s).ok, false);
    });

    it("counts per session, not per client", () => {
      const { limits } = setup();
      const first = session("192.0.2.1");
      const second = session("192.0.2.1");
      limits.connectionOpened(first);
      limits.connectionOpened(second);
      for (let i = 0; i < 5; i++) limits.commandBeforeMail(first);
      assert.equal(limits.commandBeforeMail(second).ok, true);
    });
  });

  it("turns a limit off when it is 0", () => {
    const { limits } = setup({ maxConnectionsPerIp: 0, messagesPerMinute: 0, maxCommandsBeforeMail: 0 });
    const s = session("192.0.2.1");
    for (let i = 0; i < 100; i++) assert.equal(limits.connectionOpened(session("192.0.2.1")).ok, true);
    limits.connectionOpened(s);
    for (let i = 0; i < 100; i++) {
      assert.equal(limits.messageStarted(s).ok, true);
      assert.equal(limits.commandBeforeMail(s).ok, true);
    }
  });

  describe("exempt networks", () => {
    it("never limits or tracks loopback clients by default", () => {
      const { limits } = setup();
      for (const address of ["127.0.0.1", "::ffff:127.0.0.1", "::1"]) {
        for (let i = 0; i < 10; i++) {
          const s = session(address);
          assert.equal(limits.connectionOpened(s).ok, true);
          assert.equal(limits.messageStarted(s).ok, true);
          assert.equal(limits.commandBeforeMail(s).ok, true);
        }
      }
      assert.equal(limits.trackedClients, 0);
      assert.equal(limits.openSessions, 0);
    });

    it("exempts the configured networks instead, and limits loopback when it is not listed", () => {
      const { limits } = setup({ exempt: ["192.0.2.0/24", "2001:db8::/32"] });
      for (let i = 0; i < 5; i++) {
        assert.equal(limits.connectionOpened(session("192.0.2.200")).ok, true);
        assert.equal(limits.connectionOpened(session("2001:db8:5::1")).ok, true);
      }
      for (let i = 0; i < 3; i++) limits.connectionOpened(session("127.0.0.1"));
      assert.equal(limits.connectionOpened(session("127.0.0.1")).ok, false);
    });

    it("refuses an exempt entry that is not a network, naming it", () => {
      assert.throws(() => setup({ exempt: ["192.0.2.0/33"] }), /exempt network "192.0.2.0\/33"/);
      assert.throws(() => setup({ exempt: ["localhost"] }), /exempt network "localhost"/);
    });
  });

  it("refuses settings that are not whole numbers, naming the setting", () => {
    assert.throws(() => setup({ messagesPerMinute: -1 }), /client limits: messagesPerMinute must be a whole number from 0/);
    assert.throws(() => setup({ maxTrackedClients: 0 }), /maxTrackedClients/);
    assert.throws(() => setup({ ipv6PrefixBits: 129 }), /ipv6PrefixBits/);
  });

  describe("bounded memory", () => {
    it("forgets a client a minute after its last connection closed, with nothing forgiven early", () => {
      const { limits, clock } = setup();
      const s = session("192.0.2.1");
      limits.connectionOpened(s);
      for (let i = 0; i < 6; i++) limits.messageStarted(s);
      limits.connectionClosed(s);
      clock.now += 59_999;
      limits.connectionOpened(session("192.0.2.2"));
      assert.equal(limits.trackedClients, 2, "not yet");
      clock.now += 1;
      limits.connectionOpened(session("192.0.2.3"));
      assert.equal(limits.trackedClients, 2, "192.0.2.1 forgotten, 192.0.2.2 and .3 kept");
    });

    it("never forgets a connected client, however long it stays", () => {
      const { limits, clock } = setup();
      for (let i = 0; i < 3; i++) limits.connectionOpened(session("192.0.2.1"));
      clock.now += 3_600_000;
      for (let i = 0; i < 20; i++) limits.connectionOpened(session(`198.51.100.${i}`));
      assert.equal(limits.connectionOpened(session("192.0.2.1")).ok, false);
    });

    it("holds at most maxTrackedClients after 10,000 distinct clients", () => {
      const { limits, clock } = setup({ maxTrackedClients: 100 });
      for (let i = 0; i < 10_000; i++) {
        const s = session(i % 2 === 0 ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : `2001:db8:${i.toString(16)}::1`);
        limits.connectionOpened(s);
        limits.messageStarted(s);
        limits.connectionClosed(s);
        clock.now += 1; // all within one minute: nothing has expired, eviction alone bounds it
        assert.ok(limits.trackedClients <= 100);
      }
      assert.equal(limits.trackedClients, 100);
      assert.equal(limits.openSessions, 0);
    });

    it("evicts the least recently seen client without an open connection first", () => {
      const { limits } = setup({ maxTrackedClients: 3 });
      for (let i = 0; i < 3; i++) limits.connectionOpened(session("192.0.2.1")); // oldest, connected
      const idle = session("192.0.2.2");
      limits.connectionOpened(idle);
      limits.connectionClosed(idle);
      limits.connectionOpened(session("192.0.2.3"));
      limits.connectionOpened(session("192.0.2.4")); // table full: 192.0.2.2 goes, not .1
      assert.equal(limits.trackedClients, 3);
      assert.equal(limits.connectionOpened(session("192.0.2.1")).ok, false, "192.0.2.1 still counted");
    });

    it("stays bounded even when every tracked client is connected, and closes cleanly afterwards", () => {
      const { limits } = setup({ maxTrackedClients: 2 });
      const sessions = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"].map(session);
      for (const s of sessions) assert.equal(limits.connectionOpened(s).ok, true);
      assert.equal(limits.trackedClients, 2);
      for (const s of sessions) limits.connectionClosed(s);
      assert.equal(limits.openSessions, 0);
      assert.ok(limits.trackedClients <= 2);
    });
  });
});
