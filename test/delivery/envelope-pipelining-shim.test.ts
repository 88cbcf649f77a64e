/**
 * Envelope pipelining (src/delivery/envelope-pipelining-shim.ts) against scripted SMTP servers
 * on loopback: with PIPELINING offered, MAIL FROM, RCPT TO and DATA arrive in one read; and for
 * every outcome — accepted, some or all recipients refused, MAIL FROM or DATA refused, the final
 * reply refused — nodemailer reports exactly what it reports when the same server does not offer
 * PIPELINING (its own, unpipelined code). A server that answers 354 to a DATA whose envelope
 * failed gets its connection closed, and the pool delivers the next message on a new one.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { installEnvelopePipeliningShim } from "../../src/delivery/envelope-pipelining-shim.ts";
import { SmtpClientPool } from "../../src/delivery/smtp-client-pool.ts";

installEnvelopePipeliningShim();

interface Script {
  pipelining: boolean;
  mail?: string;
  /** Reply per recipient (local part → reply); default 250. */
  rcpt?: Record<string, string>;
  /** DATA's reply; default: 354 when a recipient was accepted, else 554 (RFC 2920 §3.1). */
  data?: string;
  final?: string;
}

interface Session {
  /** The lines of each read, while not in DATA. */
  reads: string[][];
  messages: string[];
  closedByClient: boolean;
}

/** A scripted SMTP server: one Session per connection. */
async function scriptedServer(script: Script): Promise<{ server: Server; port: number; sessions: Session[] }> {
  const sessions: Session[] = [];
  const server = createServer((socket: Socket) => {
    const session: Session = { reads: [], messages: [], closedByClient: false };
    sessions.push(session);
    let buffer = "";
    let inData = false;
    let content = "";
    let mailOk = false;
    let accepted = 0;
    socket.on("end", () => {
      session.closedByClient = true;
      socket.end();
    });
    socket.on("error", () => undefined);
    socket.write("220 scripted ESMTP\r\n");
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      const lines: string[] = [];
      const replies: string[] = [];
      for (;;) {
        if (inData) {
          // the content so far, CRLF-initial, so a terminator straddling two reads is found too
          content += buffer;
          buffer = "";
          const end = `\r\n${content}`.indexOf("\r\n.\r\n");
          if (end === -1) break;
          buffer = content.slice(end + 3);
          session.messages.push(content.slice(0, end));
          content = "";
          inData = false;
          replies.push(script.final ?? "250 2.0.0 queued");
          continue;
        }
        const newline = buffer.indexOf("\r\n");
        if (newline === -1) break;
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 2);
        lines.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") replies.push(["250-scripted", ...(script.pipelining ? ["250-PIPELINING"] : []), "250-8BITMIME", "250 SIZE 30000000"].join("\r\n"));
        else if (verb === "MAIL") {
          const reply = script.mail ?? "250 2.1.0 ok";
          mailOk = reply.startsWith("2");
          accepted = 0;
          replies.push(reply);
        } else if (verb === "RCPT") {
          const local = /<([^@>]*)@/.exec(line)?.[1] ?? "";
          const reply = mailOk ? (script.rcpt?.[local] ?? "250 2.1.5 ok") : "503 5.5.1 MAIL first";
          if (reply.startsWith("2")) accepted++;
          replies.push(reply);
        } else if (verb === "DATA") {
          const reply = script.data ?? (mailOk && accepted > 0 ? "354 go ahead" : "554 5.5.1 no valid recipients");
          if (reply.startsWith("354")) inData = true;
          replies.push(reply);
        } else if (verb === "RSET") replies.push("250 2.0.0 reset");
        else if (verb === "QUIT") {
          replies.push("221 bye");
        } else replies.push("502 5.5.2 unknown");
      }
      if (lines.length > 0) session.reads.push(lines);
      if (replies.length > 0) socket.write(replies.map((reply) => `${reply}\r\n`).join(""));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port, sessions };
}

interface Outcome {
  error?: Record<string, unknown>;
  info?: Record<string, unknown>;
}

/** One message over a fresh nodemailer connection, its outcome as plain data. */
async function sendOnce(port: number, to: string[]): Promise<Outcome> {
  const connection = new SMTPConnection({ host: "127.0.0.1", port, ignoreTLS: true, name: "client.test", logger: false } as never);
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once("error", reject);
      connection.connect(() => resolve());
    });
    return await new Promise<Outcome>((resolve) => {
      connection.send({ from: "sender@origin.test", to } as never, Readable.from([Buffer.from("Subject: hi\r\n\r\nbody\r\n")]), ((error: (Error & Record<string, unknown>) | null, info: Record<string, unknown>) => {
        if (error) {
          resolve({
            error: {
              message: error.message,
              code: error.code,
              response: error.response,
              responseCode: error.responseCode,
              command: error.command,
              recipient: error.recipient,
              rejected: error.rejected,
              rejectedErrors: (error.rejectedErrors as Error[] | undefined)?.map((inner) => inner.message),
            },
          });
        } else resolve({ info: { accepted: info.accepted, rejected: info.rejected, response: info.response, rejectedErrors: (info.rejectedErrors as Error[] | undefined)?.map((inner) => inner.message) } });
      }) as never);
    });
  } finally {
    connection.close();
  }
}

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

async function outcomeBothWays(script: Omit<Script, "pipelining">, to: string[]): Promise<{ pipelined: Outcome; plain: Outcome; reads: string[][] }> {
  const withPipelining = await scriptedServer({ ...script, pipelining: true });
  const without = await scriptedServer({ ...script, pipelining: false });
  servers.push(withPipelining.server, without.server);
  const [pipelined, plain] = [await sendOnce(withPipelining.port, to), await sendOnce(without.port, to)];
  return { pipelined, plain, reads: withPipelining.sessions[0]!.reads };
}

describe("envelope pipelining (RFC 2920)", () => {
  it("sends MAIL FROM, every RCPT TO and DATA in one write when the server offers PIPELINING, and one at a time when it does not", async () => {
    const { pipelined, plain, reads } = await outcomeBothWays({}, ["a@route.test", "b@route.test"]);
    const envelopeRead = reads.find((lines) => lines.some((line) => line.startsWith("MAIL FROM")));
    assert.deepEqual(envelopeRead?.map((line) => line.split(":")[0]), ["MAIL FROM", "RCPT TO", "RCPT TO", "DATA"]);
    assert.deepEqual(pipelined, plain);
    assert.deepEqual(pipelined.info?.accepted, ["a@route.test", "b@route.test"]);

    const unpipelined = await scriptedServer({ pipelining: false });
    servers.push(unpipelined.server);
    await sendOnce(unpipelined.port, ["a@route.test"]);
    assert.ok(unpipelined.sessions[0]!.reads.every((lines) => lines.length === 1), "without PIPELINING, one command per write");
  });

  const outcomes: [string, Omit<Script, "pipelining">, string[]][] = [
    ["one of two recipients refused", { rcpt: { b: "550 5.1.1 no such user" } }, ["a@route.test", "b@route.test"]],
    ["every recipient refused", { rcpt: { a: "550 5.1.1 no such user", b: "452 4.2.2 mailbox full" } }, ["a@route.test", "b@route.test"]],
    ["MAIL FROM refused, temporarily", { mail: "451 4.7.1 try again later" }, ["a@route.test"]],
    ["MAIL FROM refused for good", { mail: "553 5.7.1 sender refused" }, ["a@route.test"]],
    ["DATA refused", { data: "554 5.3.0 no DATA today" }, ["a@route.test"]],
    ["the content refused after the final dot", { final: "451 4.3.0 deferred (rate limited)" }, ["a@route.test"]],
    ["a multi-line refusal", { rcpt: { a: "550-5.1.1 no such user\r\n550 5.1.1 see the docs" } }, ["a@route.test"]],
  ];
  for (const [label, script, to] of outcomes) {
    it(`reports ${label} exactly as nodemailer does unpipelined`, async () => {
      const { pipelined, plain } = await outcomeBothWays(script, to);
      assert.deepEqual(pipelined, plain);
      assert.ok(pipelined.error !== undefined || pipelined.info !== undefined);
    });
  }

  it("closes a connection whose server took DATA after refusing every recipient, and the pool delivers the next message on a new one", async () => {
    const broken = await scriptedServer({ pipelining: true, rcpt: { nobody: "550 5.1.1 no such user" }, data: "354 go ahead anyway" });
    servers.push(broken.server);
    const pool = new SmtpClientPool({ hostname: "client.test" });
    try {
      const target = { address: "127.0.0.1", port: broken.port, exchange: "localhost" };
      const message = () => Readable.from([Buffer.from("Subject: hi\r\n\r\nbody\r\n")]);
      await assert.rejects(pool.send(target, { from: "sender@origin.test", to: "nobody@route.test", size: 22 }, message), (error: Error & { code?: string; responseCode?: number }) => {
        assert.equal(error.code, "EENVELOPE");
        assert.equal(error.responseCode, 550);
        return true;
      });
      const delivered = await pool.send(target, { from: "sender@origin.test", to: "someone@route.test", size: 22 }, message);
      assert.match(delivered.response, /^250/);
      assert.equal(broken.sessions.length, 2, "the second message came on a new connection");
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(broken.sessions[0]!.closedByClient, true, "the first connection was closed, not reset");
      assert.deepEqual(broken.sessions[0]!.messages, [], "nothing was sent as content on it");
      assert.equal(broken.sessions[1]!.messages.length, 1);
    } finally {
      await pool.close();
    }
  });
});
