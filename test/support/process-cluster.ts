/**
 * Real `mailroute start` processes (MailrouteProcess) as one cluster: every node on the same
 * PostgreSQL database with the same cluster key (given by --cluster-key-file, since the child's
 * environment drops MAILROUTE_*), each with its own data directory, node id and ports — the
 * README's three-node setup on one machine. With no database URL it is one SQLite node.
 *
 * Promises: `stop()` ends every child and removes the data directories and the key file;
 * nodes are started together, so they race to migrate and create the shared keys as in
 * production.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.ts";
import { TEST_CLUSTER_KEY } from "./mailroute-harness.ts";
import { MailrouteProcess } from "./mailroute-process.ts";

export interface ProcessCluster {
  readonly nodes: MailrouteProcess[];
  /** Data directory of nodes[i] (SQLite: where the database lives). */
  readonly dataDirs: string[];
  stop(): Promise<void>;
}

export async function startProcessCluster(options: { names: readonly string[]; databaseUrl: string | null; flags: Record<string, string>; dataDirs?: readonly string[] }): Promise<ProcessCluster> {
  const keyDir = mkdtempSync(join(tmpdir(), "mailroute-key-"));
  const keyFile = join(keyDir, "cluster.key");
  writeFileSync(keyFile, `${TEST_CLUSTER_KEY}\n`, { mode: 0o600 });
  const dataDirs = options.names.map((name, index) => options.dataDirs?.[index] ?? mkdtempSync(join(tmpdir(), `mailroute-${name}-`)));
  const nodes: MailrouteProcess[] = [];
  for (const [index, name] of options.names.entries()) {
    nodes.push(
      new MailrouteProcess(
        {
          "data-dir": dataDirs[index]!,
          ...(options.databaseUrl === null ? {} : { database: options.databaseUrl, "cluster-key-file": keyFile }),
          "node-id": name,
          "http-host": "127.0.0.1",
          "http-port": String(await freePort()),
          "admin-token": "crash-admin-token",
          hostname: "mx.mailroute.test",
          "log-level": "info",
          ...options.flags,
        },
        await freePort(),
      ),
    );
  }
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    for (const dir of [...dataDirs, keyDir]) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((node) => node.start()));
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, dataDirs, stop };
}
