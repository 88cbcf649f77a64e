/**
 * After QUIT the server closes a plaintext connection at once (src/smtp/quit-close-shim.ts), with a
 * real smtp-server on loopback and raw TCP clients: a client that keeps its side open still gets
 * the whole 221 and the end of the stream, and the server's close handling runs without waiting
 * for it; a client that resets after the 221 leaves no socket error behind; a TLS session still
 * ends with TLS's own close.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect as connectTcp, type AddressInfo, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { installQuitCloseShim } from "../../src/smtp/quit-close-shim.ts";
import { installReplyBatchingShim } from "../../src/smtp/reply-batching-shim.ts";
import { SMTPServer } from "../../src/smtp/smtp-server-package.ts";
import { createTestCa, type TestCa } from "../support/test-ca.ts";

installReplyBatchingShim();
installQuitCloseShim();

/** Reads from `socket` until `text` has arrived; everything read so far. */
async function readUntil(socket: Socket, seen: { text: string }, text: RegExp): Promise<string> {
  while (!text.test(seen.text)) await once(socket, "data");
  return seen.text;
}

function collect(socket: Socket): { text: string } {
  const seen = { text: "" };
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => (seen.text += chunk));
  return seen;
}

describe("closing after QUIT", () => {
  let ca: TestCa;
  let server: SMTPServer;
  let port: number;
  const closed: number[] = [];
  const socketErrors: string[] = [];

  before(async () => {
    ca = createTestCa();
    const leaf = ca.issue("mx", ["mx.quit.test"]);
    const quiet = () => undefined;
    server = new SMTPServer({
      key: leaf.key,
      cert: leaf.cert,
      authOptional: true,
      // smtp-server reports a socket's errors (a reset among them) through its logger
      logger: { info: quiet, debug: quiet, warn: quiet, trace: quiet, fatal: quiet, level: quiet, child: () => undefined, error: (entry: { err?: { code?: string } }) => socketErrors.push(entry.err?.code ?? "error") } as never,
      onClose: () => closed.push(Date.now()),
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function closesWithin(ms: number, from: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (closed.length > from) return true;
      await sleep(10);
    }
    return false;
  }

  it("sends the whole 221 and closes, while the client still holds its side open", async () => {
    const before = closed.length;
    const client = connectTcp({ port, host: "127.0.0.1", allowHalfOpen: true });
    const seen = collect(client);
    await readUntil(client, seen, /^220 .*\r\n/m);
    client.write("EHLO client.test\r\n");
    await readUntil(client, seen, /^250 /m);
    const ended = once(client, "end");
    client.write("QUIT\r\n");
    await ended;
    assert.match(seen.text, /\r\n221 2\.0\.0 Bye\r\n$|\r\n221 Bye\r\n$/, "the 221 arrived whole before the end of the stream");
    // the library would wait for the client's FIN (or 5 s); the client has not closed
    assert.equal(client.writableEnded, false);
    assert.equal(await closesWithin(2000, before), true, "the server closed the connection without waiting for the client");
    client.destroy();
  });

  it("leaves no socket error behind when the client resets after the 221", async () => {
    const errorsBefore = socketErrors.length;
    const before = closed.length;
    const client = connectTcp({ port, host: "127.0.0.1" });
    const seen = collect(client);
    await readUntil(client, seen, /^220 .*\r\n/m);
    client.write("QUIT\r\n");
    await readUntil(client, seen, /^221 /m);
    client.resetAndDestroy();
    assert.equal(await closesWithin(2000, before), true);
    // a reset that reached the socket would have been logged as an error (ECONNRESET)
    await sleep(100);
    assert.deepEqual(socketErrors.slice(errorsBefore), []);
  });

  it("ends a TLS session after QUIT with TLS's own close, not a cut", async () => {
    const errorsBefore = socketErrors.length;
    const raw = connectTcp({ port, host: "127.0.0.1" });
    const seen = collect(raw);
    await readUntil(raw, seen, /^220 .*\r\n/m);
    raw.write("EHLO client.test\r\nSTARTTLS\r\n");
    await readUntil(raw, seen, /^220 .*ready/im);
    raw.removeAllListeners("data");
    const before = closed.length;
    const tls = connectTls({ socket: raw, servername: "mx.quit.test", ca: ca.cert });
    await once(tls, "secureConnect");
    const secured = collect(tls as unknown as Socket);
    tls.write("EHLO client.test\r\n");
    await readUntil(tls as unknown as Socket, secured, /^250 /m);
    const ended = once(tls, "end");
    tls.write("QUIT\r\n");
    await ended;
    // the end of the stream came through TLS (close_notify): a cut connection would be an error here
    assert.match(secured.text, /\r\n221 [^\r\n]*\r\n$/);
    assert.equal(await closesWithin(2000, before), true);
    assert.deepEqual(socketErrors.slice(errorsBefore), []);
  });
});
