/**
 * Replies to pipelined commands leave in one write (src/smtp/reply-batching-shim.ts), with a
 * real smtp-server on loopback and a raw TCP client: the server socket's writes are counted.
 * And where the connection changes hands — a NOOP pipelined with STARTTLS — what was held goes
 * out before the 220, and the TLS handshake that follows completes.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect as connectTcp, type AddressInfo, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { after, before, describe, it } from "node:test";
import { installReplyBatchingShim } from "../../src/smtp/reply-batching-shim.ts";
import { SMTPServer } from "../../src/smtp/smtp-server-package.ts";
import { createTestCa, type TestCa } from "../support/test-ca.ts";

installReplyBatchingShim();

interface Counted {
  /** Writes to the socket (one system call each, a writev for a batch). */
  writes: number;
}

/** Reads from `socket` until `text` has arrived after offset `from`; everything read since. */
async function readUntil(socket: Socket, seen: { text: string }, text: RegExp, from = 0): Promise<string> {
  while (!text.test(seen.text.slice(from))) await once(socket, "data");
  return seen.text.slice(from);
}

describe("reply batching", () => {
  let ca: TestCa;
  let server: SMTPServer;
  let port: number;
  const counted: Counted[] = [];

  before(async () => {
    ca = createTestCa();
    const leaf = ca.issue("mx", ["mx.batch.test"]);
    // handlers that answer at once, as mailroute's MAIL FROM and RCPT TO handlers do
    server = new SMTPServer({
      key: leaf.key,
      cert: leaf.cert,
      authOptional: true,
      logger: false,
      onMailFrom: (_address, _session, callback) => callback(),
      onRcptTo: (_address, _session, callback) => callback(),
      onData: (stream, _session, callback) => stream.on("end", () => callback()).resume(),
    });
    // every write the server makes on an accepted connection, counted where Node writes it
    (server as unknown as { server: import("node:net").Server }).server.prependListener("connection", (socket: Socket) => {
      const count: Counted = { writes: 0 };
      counted.push(count);
      const generic = (socket as unknown as { _writeGeneric: (...args: unknown[]) => unknown })._writeGeneric;
      (socket as unknown as { _writeGeneric: (...args: unknown[]) => unknown })._writeGeneric = function (this: Socket, ...args: unknown[]) {
        count.writes++;
        return generic.apply(this, args);
      };
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    ca.remove();
  });

  async function session(): Promise<{ socket: Socket; seen: { text: string }; count: Counted }> {
    const socket = connectTcp(port, "127.0.0.1");
    const seen = { text: "" };
    socket.setEncoding("latin1").on("data", (chunk: string) => (seen.text += chunk));
    await readUntil(socket, seen, /^220 /m);
    socket.write("EHLO client.batch.test\r\n");
    await readUntil(socket, seen, /^250 /m);
    return { socket, seen, count: counted.at(-1)! };
  }

  it("answers MAIL FROM, RCPT TO and DATA sent in one write with one write", async () => {
    const { socket, seen, count } = await session();
    try {
      const before = count.writes;
      socket.write("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@batch.test>\r\nDATA\r\n");
      const text = await readUntil(socket, seen, /^354 /m, seen.text.length);
      assert.match(text, /^250 [^\r]*\r\n250 [^\r]*\r\n354 /, "the three replies, in order");
      assert.equal(count.writes - before, 1, "one write for the three replies");
      // the end of the message, then a lone command: each reply goes out, none waits for more
      socket.write("hello\r\n.\r\n");
      await readUntil(socket, seen, /^250 /m, seen.text.length);
      const after = count.writes;
      socket.write("NOOP\r\n");
      assert.match(await readUntil(socket, seen, /^250 /m, seen.text.length), /^250 /);
      assert.equal(count.writes - after, 1);
    } finally {
      socket.destroy();
    }
  });

  it("keeps STARTTLS working when it is pipelined behind another command: the 250, then the 220, then a TLS session", async () => {
    const { socket, seen } = await session();
    socket.write("NOOP\r\nSTARTTLS\r\n");
    const text = await readUntil(socket, seen, /^220 /m, seen.text.length);
    assert.match(text, /^250 [^\r]*\r\n220 /, "the NOOP's 250 first, then the 220");
    socket.removeAllListeners("data");
    const secure = connectTls({ socket, servername: "mx.batch.test", ca: ca.cert });
    await once(secure, "secureConnect");
    const tlsSeen = { text: "" };
    secure.setEncoding("latin1").on("data", (chunk: string) => (tlsSeen.text += chunk));
    secure.write("EHLO client.batch.test\r\n");
    while (!/^250 /m.test(tlsSeen.text)) await once(secure, "data");
    assert.match(tlsSeen.text, /^250[- ]/m);
    secure.destroy();
  });
});
