/**
 * What the primary of `mailroute start --processes n` does once, before it forks: create the
 * data directory and the node id, open the store (so migrations run once, not raced by n
 * processes), create the node's secrets, and make the admin token — generated here, so it is
 * shown once and never by each process (they find it stored and generate none).
 *
 * Promises: failures are the StartupError / CliError a single process would throw, so
 * start-failure.ts explains them in the same words; the store is closed before returning.
 */
import type { Logger } from "../analytics/structured-log.ts";
import { ensureDataDir, octal, type OnTightened } from "../config/data-dir.ts";
import { resolveNodeId } from "../config/node-id.ts";
import type { Settings } from "../config/settings.ts";
import { ensureAdminToken } from "../core/tokens/operator-token.ts";
import { openStore } from "../store/open-store.ts";
import { loadNodeSecrets, requireClusterKey } from "./node-secrets.ts";
import { StartupError } from "./startup-error.ts";

export interface Preflight {
  /** The base node id; process k runs as `<nodeId>-p<k>`. */
  nodeId: string;
  /** Set when this start generated the admin token: show it once. */
  generatedAdminToken: string | null;
}

export async function preparePrimary(settings: Readonly<Settings>, logger: Logger): Promise<Preflight> {
  const onTightened: OnTightened = (path, from, to) => logger.log("warn", "data_permissions_tightened", { path, from: octal(from), to: octal(to) });
  try {
    ensureDataDir(settings.dataDir, onTightened);
  } catch (error) {
    throw new StartupError("store", settings.dataDir, error);
  }
  const nodeId = resolveNodeId(settings.nodeId, settings.dataDir);
  requireClusterKey(settings);
  const store = await openStore({ dataDir: settings.dataDir, databaseUrl: settings.database ?? undefined, onPermissionsTightened: onTightened }).catch((error: unknown) => {
    throw new StartupError("store", settings.database ?? settings.dataDir, error);
  });
  try {
    await loadNodeSecrets(settings, store, logger, onTightened);
    return { nodeId, generatedAdminToken: await ensureAdminToken(store.db, settings.adminToken) };
  } finally {
    await store.close();
  }
}
