/**
 * The end-to-end harness: a real mailroute (startMailroute, as `mailroute start` runs it) on an
 * ephemeral loopback port, a real DNS server on loopback publishing MX records, and one real
 * SMTP sink per destination domain, each on its own loopback address (127.0.0.N) sharing one
 * port, so delivery goes through genuine MX resolution and --outbound-port.
 * Configuration is changed through the service layer on a second store connection, as the
 * CLI does from another process.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { loadSettings, type Settings } from "../../src/config/settings.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { lazySecretBox } from "../../src/workers/secret-box.ts";
import { createServices, type AccountServices } from "../../src/core/services.ts";
import { startMailroute, type RunningMailroute, type StartOverrides } from "../../src/cli/start-service.ts";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "./dns-server.ts";
import { startSmtpSink, type SmtpSink } from "./smtp-sink.ts";

/** The cluster key every harness node shares (fixed: tests on one database must agree). */
export const TEST_CLUSTER_KEY = Buffer.alloc(32, 0x5a).toString("base64");

export interface Harness {
  mailroute: RunningMailroute;
  port: number;
  dns: TestDnsServer;
  sinks: Record<string, SmtpSink>;
  sinkPort: number;
  /** A configuration client on its own store connection (like the CLI). */
  config: AccountServices;
  configStore: Store;
  dataDir: string;
  /** Make the running server see configuration changes now rather than at its next poll. */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** Destination domains that get a sink each. */
  destinations?: string[];
  settings?: Record<string, string>;
  /** Static routes (--transport): domain → the destination domain whose sink receives it. */
  transports?: Record<string, string>;
  overrides?: StartOverrides;
}

async function startSinks(domains: readonly string[]): Promise<{ sinks: Record<string, SmtpSink>; port: number; hosts: Record<string, string> }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const sinks: Record<string, SmtpSink> = {};
    const hosts: Record<string, string> = {};
    let port = 0;
    try {
      for (const [index, domain] of domains.entries()) {
        const host = `127.0.0.${index + 2}`;
        const sink = await startSmtpSink({ host, port });
        port = sink.port;
        sinks[domain] = sink;
        hosts[domain] = host;
      }
      return { sinks, port, hosts };
    } catch (error) {
      await Promise.all(Object.values(sinks).map((sink) => sink.stop()));
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    }
  }
  throw new Error("could not find a port free on every sink address");
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), "mailroute-e2e-"));
  const dns = await startDnsServer();
  const domains = options.destinations ?? ["dest.test"];
  const { sinks, port: sinkPort, hosts } = await startSinks(domains);
  for (const domain of domains) {
    dns.setRecords(domain, "MX", [{ exchange: `mx.${domain}`, priority: 10 }]);
    dns.setRecords(`mx.${domain}`, "A", [hosts[domain]!]);
  }
  let mailroute: RunningMailroute;
  try {
    const settings: Readonly<Settings> = loadSettings(
      {
        "data-dir": dataDir,
        "smtp-port": "0",
        "smtp-host": "127.0.0.1",
        "http-port": "0",
        "admin-token": "test-admin-token",
        hostname: "mx.mailroute.test",
        "dns-servers": dns.address,
        "outbound-port": String(sinkPort || 25),
        "relay-timeout": "20000",
        transport: Object.entries(options.transports ?? {})
          .map(([domain, sinkDomain]) => `${domain}=${hosts[sinkDomain]}:${sinkPort}`)
          .join(","),
        ...options.settings,
      },
      // a PostgreSQL node needs a cluster key (issue 13); a SQLite one ignores it
      { MAILROUTE_CLUSTER_KEY: TEST_CLUSTER_KEY },
    );
    mailroute = await startMailroute(settings, {
      logger: silentLogger,
      client: { connectionTimeoutMs: 3000, greetingTimeoutMs: 3000, socketTimeoutMs: 5000, ...options.overrides?.client },
      closeTimeoutMs: 500,
      ...options.overrides,
    });
  } catch (error) {
    // Leave nothing listening behind, or the test process never exits.
    await Promise.all(Object.values(sinks).map((sink) => sink.stop()));
    await dns.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const configStore = await openStore({ dataDir });
  const config = createServices(configStore, { secretBox: lazySecretBox(dataDir), dataDir }).forAccount({ account: "default", actor: CLI_OPERATOR });
  return {
    mailroute,
    port: mailroute.smtp.port,
    dns,
    sinks,
    sinkPort,
    config,
    configStore,
    dataDir,
    reload: () => mailroute.routing.refresh(),
    async stop() {
      await mailroute.close();
      await configStore.close();
      await Promise.all(Object.values(sinks).map((sink) => sink.stop()));
      await dns.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
