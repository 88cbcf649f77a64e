import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { startHarness, type Harness } from "../support/mailroute-harness.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";

describe("inbound SMTP policy", () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ destinations: ["dest.test"], settings: { "smtp-timeout": "1500", "max-recipients": "5" } });
    await h.config.zones.create("example.com", { supportSubaddress: true });
    await h.config.zones.create("bücher.example");
    await h.config.zones.create("off.example");
    await h.config.zones.create("catch.example");
    await h.config.zones.create("drop.example");
    await h.config.addresses.create("owner@dest.test", { verified: true });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@example.com" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "info@bücher.example" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@off.example" }], actions: [{ type: "forward", value: ["owner@dest.test"] }] });
    await h.config.zones.update("off.example", { enabled: false });
    await h.config.catchAll.set("catch.example", { actions: [{ type: "forward", value: ["owner@dest.test"] }], enabled: true });
    await h.config.catchAll.set("drop.example", { actions: [{ type: "drop" }], enabled: true });
    await h.reload();
  });

  after(async () => {
    await h?.stop();
  });

  beforeEach(() => h.sinks["dest.test"]!.reset());

  it("advertises PIPELINING, 8BITMIME, SMTPUTF8, SIZE 26214400 and ENHANCEDSTATUSCODES, and no AUTH", async () => {
    const { client, greeting } = await SmtpTestClient.connect(h.port);
    assert.equal(greeting.code, 220);
    const ehlo = await client.command("EHLO client.test");
    assert.equal(ehlo.code, 250);
    for (const capability of ["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 26214400", "ENHANCEDSTATUSCODES"]) {
      assert.ok(ehlo.lines.some((line) => line.slice(4) === capability), `${capability} in ${ehlo.text}`);
    }
    assert.ok(!ehlo.lines.some((line) => /AUTH/.test(line)), "no AUTH on the MX port");
    assert.equal((await client.command("AUTH PLAIN AGFiAGM=")).code >= 500, true);
    await client.quit();
  });

  describe("never an open relay", () => {
    // smtp-server already refuses some tricks as bad syntax (501 5.1.3) before routing sees them;
    // either way nothing is relayed.
    const attempts: [string, string, string][] = [
      ["a domain we do not route", "victim@elsewhere.test", "5.7.1"],
      ["percent hack", "victim%elsewhere.test@example.com", "5.7.1"],
      ["bang path", "elsewhere.test!victim@example.com", "5.7.1"],
      ["quoted local part with @", '"victim@elsewhere.test"@example.com', "5.1.3"],
      ["address literal", "victim@[127.0.0.2]", "5.7.1"],
      ["our domain as a prefix of theirs", "victim@example.com.elsewhere.test", "5.7.1"],
      ["trailing dot on a foreign domain", "victim@elsewhere.test.", "5.1.3"],
      ["double @", "victim@elsewhere.test@example.com", "5.1.3"],
      ["IDN look-alike of our domain", "info@bücher.exampIe", "5.7.1"],
      ["our hostname without SRS", "victim@mx.mailroute.test", "5.7.1"],
      ["sub-domain of a zone", "hello@sub.example.com", "5.7.1"],
    ];
    for (const [name, address, enhanced] of attempts) {
      it(`refuses ${name}: ${address}`, async () => {
        const { client } = await SmtpTestClient.connect(h.port);
        await client.command("EHLO client.test");
        await client.command("MAIL FROM:<spammer@bad.test>");
        const reply = await client.command(`RCPT TO:<${address}>`);
        assert.ok(reply.code >= 500 && reply.code < 600, `${address}: ${reply.line}`);
        assert.equal(reply.enhanced, enhanced, reply.line);
        await client.quit();
        assert.equal(h.sinks["dest.test"]!.messages.length, 0);
      });
    }

    for (const sender of ["", "hello@example.com", "postmaster@mx.mailroute.test", "x@[127.0.0.1]"]) {
      it(`refuses relaying for the sender <${sender}> (null, our own domain, our host, an address literal)`, async () => {
        const { client } = await SmtpTestClient.connect(h.port);
        await client.command("EHLO client.test");
        const mail = await client.command(`MAIL FROM:<${sender}>`);
        if (mail.code === 250) {
          const reply = await client.command("RCPT TO:<victim@elsewhere.test>");
          assert.equal(reply.code, 550, reply.line);
          assert.equal(reply.enhanced, "5.7.1");
        } else {
          assert.ok(mail.code >= 500, mail.line);
        }
        await client.quit();
        assert.equal(h.sinks["dest.test"]!.messages.length, 0);
      });
    }

    it("refuses a source route", async () => {
      const { client } = await SmtpTestClient.connect(h.port);
      await client.command("EHLO client.test");
      await client.command("MAIL FROM:<spammer@bad.test>");
      const reply = await client.command("RCPT TO:<@example.com:victim@elsewhere.test>");
      assert.ok(reply.code >= 500, reply.line);
      await client.quit();
    });
  });

  it("routes mixed case and the Unicode or punycode form of an IDN zone", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.command("EHLO client.test");
    await client.command("MAIL FROM:<sender@origin.test> SMTPUTF8");
    assert.equal((await client.command("RCPT TO:<HeLLo@EXAMPLE.com>")).code, 250);
    await client.command("RSET");
    await client.command("MAIL FROM:<sender@origin.test> SMTPUTF8");
    assert.equal((await client.command("RCPT TO:<info@bücher.example>")).code, 250);
    await client.command("RSET");
    await client.command("MAIL FROM:<sender@origin.test>");
    const puny = await client.command("RCPT TO:<info@xn--bcher-kva.example>");
    assert.equal(puny.code, 250, puny.line);
    assert.equal((await client.data(testMessage())).code, 250);
    await client.quit();
  });

  it("refuses mail for a disabled domain with a reason", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    const { rcpts } = await client.envelope("sender@origin.test", ["hello@off.example"]);
    assert.equal(rcpts[0]!.code, 550);
    assert.match(rcpts[0]!.text, /disabled for off\.example/);
    await client.quit();
  });

  it("forwards unknown addresses through an enabled catch-all, and drops through a drop catch-all", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    const { rcpts } = await client.envelope("sender@origin.test", ["anything@catch.example"]);
    assert.equal(rcpts[0]!.code, 250);
    assert.equal((await client.data(testMessage())).code, 250);
    await client.command("MAIL FROM:<sender@origin.test>");
    assert.equal((await client.command("RCPT TO:<whatever@drop.example>")).code, 250);
    assert.equal((await client.data(testMessage())).code, 250);
    await client.quit();
    assert.equal(h.sinks["dest.test"]!.messages.length, 1, "only the catch-all forward arrived");
  });

  it("refuses unknown addresses once the catch-all is disabled", async () => {
    await h.config.catchAll.set("catch.example", { enabled: false });
    await h.reload();
    try {
      const { client } = await SmtpTestClient.connect(h.port);
      const { rcpts } = await client.envelope("sender@origin.test", ["anything@catch.example"]);
      assert.equal(rcpts[0]!.code, 550);
      assert.equal(rcpts[0]!.enhanced, "5.1.1");
      await client.quit();
    } finally {
      await h.config.catchAll.set("catch.example", { actions: [{ type: "forward", value: ["owner@dest.test"] }], enabled: true });
      await h.reload();
    }
  });

  it("disconnects a client after 20 refused recipients in one session (probing for addresses)", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.command("EHLO client.test");
    await client.command("MAIL FROM:<prober@bad.test>");
    const codes: number[] = [];
    for (let i = 0; i < 21; i++) codes.push((await client.command(`RCPT TO:<guess${i}@example.com>`)).code);
    assert.deepEqual(codes, [...Array(20).fill(550), 421]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(client.closed, true);
  });

  it("answers 452 4.5.3 past the recipient limit", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    const recipients = ["a", "b", "c", "d", "e", "f"].map((l) => `${l}@catch.example`);
    const { rcpts } = await client.envelope("sender@origin.test", recipients);
    assert.deepEqual(rcpts.map((r) => r.code), [250, 250, 250, 250, 250, 452]);
    assert.equal(rcpts[5]!.enhanced, "4.5.3");
    await client.quit();
  });

  it("answers a Worker rule whose worker is not deployed with 451 4.3.2 after DATA", async () => {
    await h.config.rules.create({ matchers: [{ type: "literal", field: "to", value: "bot@example.com" }], actions: [{ type: "worker", value: ["my-worker"] }] }, undefined, { allowUndeployedWorker: true });
    await h.reload();
    const { client } = await SmtpTestClient.connect(h.port);
    const { rcpts } = await client.envelope("sender@origin.test", ["bot@example.com"]);
    assert.equal(rcpts[0]!.code, 250);
    const reply = await client.data(testMessage());
    assert.equal(reply.code, 451, reply.line);
    assert.equal(reply.enhanced, "4.3.2");
    assert.match(reply.text, /my-worker/);
    await client.quit();
  });

  it("refuses a declared SIZE over 25 MiB at MAIL FROM", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.command("EHLO client.test");
    const reply = await client.command(`MAIL FROM:<sender@origin.test> SIZE=${25 * 1024 * 1024 + 1}`);
    assert.equal(reply.code, 552);
    await client.quit();
  });

  it("refuses a message over 25 MiB with 552 5.3.4 and forwards nothing", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.envelope("sender@origin.test", ["hello@example.com"]);
    assert.equal((await client.command("DATA")).code, 354);
    const reply = client.read();
    client.write(`${testMessage()}\r\n`);
    const line = `${"x".repeat(998)}\r\n`;
    const chunk = line.repeat(1024); // ~1 MiB
    for (let i = 0; i < 26; i++) client.write(chunk);
    client.write(".\r\n");
    const result = await reply;
    assert.equal(result.code, 552, result.line);
    assert.equal(result.enhanced, "5.3.4");
    // The session survives: the next transaction works.
    const again = await client.command("MAIL FROM:<sender@origin.test>");
    assert.equal(again.code, 250);
    await client.quit();
    assert.equal(h.sinks["dest.test"]!.messages.length, 0);
  });

  it("forwards a message just under 25 MiB intact", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.envelope("sender@origin.test", ["hello@example.com"]);
    assert.equal((await client.command("DATA")).code, 354);
    const reply = client.read();
    const header = testMessage({ body: "" });
    client.write(header);
    const line = `${"y".repeat(998)}\r\n`;
    const lines = Math.floor((25 * 1024 * 1024 - header.length - 4096) / line.length);
    const chunk = line.repeat(1024);
    for (let i = 0; i < Math.floor(lines / 1024); i++) client.write(chunk);
    client.write(line.repeat(lines % 1024));
    client.write(".\r\n");
    const result = await reply;
    assert.equal(result.code, 250, result.line);
    await client.quit();
    const [message] = h.sinks["dest.test"]!.messages;
    assert.ok(message);
    assert.ok(message.raw.length > 25 * 1024 * 1024 - 8192, `received ${message.raw.length} bytes`);
    assert.ok(message.raw.length <= 25 * 1024 * 1024 + 1024);
  });

  it("cuts off a stalled client with 421 4.4.2", async () => {
    const { client } = await SmtpTestClient.connect(h.port);
    await client.command("EHLO client.test");
    const reply = await client.read(); // say nothing; the server must speak first
    assert.equal(reply.code, 421);
    assert.equal(reply.enhanced, "4.4.2");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(client.closed, true, "connection closed after 421");
  });
});
