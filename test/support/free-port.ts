/**
 * A TCP port free on 127.0.0.1 right now, for a child process that must be told its port before
 * it starts (a `mailroute start` restarted on the same port after a SIGKILL). Promises nothing
 * about later: another process may take it; the caller's start then fails and says so.
 */
import { createServer, type AddressInfo } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
