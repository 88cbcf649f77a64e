/**
 * A TCP proxy on loopback between a node and its PostgreSQL server, for cluster tests: it
 * counts how often a string (e.g. "config_version") crosses from the clients to the server —
 * so a test can tell whether a node still polls — and it can cut every connection and refuse
 * new ones, as a lost network would, then let them through again.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** Occurrences of `needle` sent by clients since start (or the last reset). */
  count(): number;
  resetCount(): void;
  /** Destroys every open connection and refuses new ones until `restore`. */
  cut(): void;
  restore(): void;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, needle: string): Promise<TcpProxy> {
  const pattern = Buffer.from(needle);
  let hits = 0;
  let cut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = connect(target);
    sockets.add(client);
    sockets.add(upstream);
    // a needle split across two chunks is rare and only undercounts; tests compare against zero or a bound
    let tail = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      const window = Buffer.concat([tail, chunk]);
      for (let at = window.indexOf(pattern); at !== -1; at = window.indexOf(pattern, at + pattern.length)) {
        if (at + pattern.length > tail.length) hits++;
      }
      tail = window.subarray(Math.max(0, window.length - pattern.length + 1));
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", close);
    upstream.on("close", close);
    client.on("error", close);
    upstream.on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    count: () => hits,
    resetCount() {
      hits = 0;
    },
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      cut = false;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
