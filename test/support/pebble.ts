/**
 * Pebble, Let's Encrypt's RFC 8555 test CA (Debian package `pebble`, installed by .ci/run), on
 * loopback: its ACME directory over HTTPS with a certificate from a test CA, HTTP-01
 * validation against a port the test chooses (where mailroute's HTTP service listens), and
 * names resolved through the test's own DNS server.
 *
 * Promises: `start` resolves once the directory answers; `rootPem` is the root Pebble signs
 * with (generated at its start), for a client to trust its certificates; `stop` kills it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import type { TestCa } from "./test-ca.ts";

export const PEBBLE_BINARY = "/usr/bin/pebble";

export interface Pebble {
  readonly directoryUrl: string;
  /** Pebble's current root certificate (PEM). */
  readonly rootPem: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function fetchText(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { ca, timeout: 2_000 }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", reject);
  });
}

export function pebbleInstalled(): boolean {
  return existsSync(PEBBLE_BINARY);
}

export async function startPebble(options: { ca: TestCa; dnsServer: string; httpChallengePort: number }): Promise<Pebble> {
  const leaf = options.ca.issue("pebble-listener", ["127.0.0.1"]);
  const [port, managementPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const config = join(options.ca.dir, "pebble-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: leaf.certFile,
        privateKey: leaf.keyFile,
        httpPort: options.httpChallengePort,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const child: ChildProcess = spawn(PEBBLE_BINARY, ["-config", config, "-dnsserver", options.dnsServer], {
    // no artificial sleeps before validation, no deliberately rejected nonces: the test is about us
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => (log = (log + chunk.toString("utf8")).slice(-4000)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  const directoryUrl = `https://127.0.0.1:${port}/dir`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetchText(directoryUrl, options.ca.cert)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`pebble did not start: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const root = await fetchText(`https://127.0.0.1:${managementPort}/roots/0`, options.ca.cert);
  if (root.status !== 200) throw new Error(`pebble root: HTTP ${root.status}`);
  return { directoryUrl, rootPem: root.body, stop };
}
