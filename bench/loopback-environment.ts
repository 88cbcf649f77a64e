/**
 * The world a benchmark run lives in, all on 127.0.0.1: an authoritative DNS server publishing
 * the destination's MX, the fast sink that MX points to, and data directories holding one
 * routing rule, `user@bench.test` → `inbox@sink.test` (verified).
 *
 * Delivery therefore goes through genuine MX resolution and --outbound-port, as in production,
 * and nothing leaves loopback (the .test names are reserved, RFC 2606 §2).
 * Promises: `close` removes every data directory it created and stops DNS and sink.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_OPERATOR } from "../src/core/service-context.ts";
import { createServices } from "../src/core/services.ts";
import { openStore } from "../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "../test/support/dns-server.ts";
import { startFastSink, type FastSink } from "./fast-sink.ts";

export const SERVER_HOSTNAME = "mx.mailroute.test";
export const ENVELOPE = Object.freeze({ from: "sender@origin.test", to: "user@bench.test" });
export const DESTINATION = "inbox@sink.test";

export interface LoopbackEnvironment {
  readonly dns: TestDnsServer;
  readonly sink: FastSink;
  /** A fresh data directory already configured with the bench zone, destination and rule. */
  newDataDir(): Promise<string>;
  close(): Promise<void>;
}

export async function startLoopbackEnvironment(): Promise<LoopbackEnvironment> {
  // TTL 300 s, as real zones publish (most use 300–3600): a resolver that caches may use it
  const dns = await startDnsServer({ ttl: 300 });
  const sink = await startFastSink();
  dns.setRecords("sink.test", "MX", [{ exchange: "mx.sink.test", priority: 10 }]);
  dns.setRecords("mx.sink.test", "A", ["127.0.0.1"]);
  const dataDirs: string[] = [];
  return {
    dns,
    sink,
    async newDataDir() {
      const dataDir = mkdtempSync(join(tmpdir(), "mailroute-bench-"));
      dataDirs.push(dataDir);
      // configured through the service layer before the server starts, as `mailroute rule add`
      // would, so the server's first routing snapshot already has the rule
      const store = await openStore({ dataDir });
      try {
        const config = createServices(store).forAccount({ account: "default", actor: CLI_OPERATOR });
        await config.zones.create("bench.test");
        await config.addresses.create(DESTINATION, { verified: true });
        await config.rules.create({ matchers: [{ type: "literal", field: "to", value: ENVELOPE.to }], actions: [{ type: "forward", value: [DESTINATION] }] });
      } finally {
        await store.close();
      }
      return dataDir;
    },
    async close() {
      await sink.stop();
      await dns.stop();
      for (const dataDir of dataDirs.splice(0)) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
