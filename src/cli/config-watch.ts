/**
 * How a running node learns of configuration changes: SQLite polls the config version (one
 * indexed single-row read every 250 ms: the processes share one file, there is no push);
 * PostgreSQL pushes — the node LISTENs (store/config-listener.ts) and reloads on each
 * notification, and reads the version only at start and after a reconnect. No polling loop
 * runs per node in cluster mode.
 *
 * Promises: `available()` is false while a PostgreSQL node has lost its listening connection
 * and not yet resynchronised (the SMTP front end then answers 451 4.3.0); always true on
 * SQLite, whose file is local. `stop` ends the polling or the listening.
 */
import type { Logger } from "../analytics/structured-log.ts";
import type { Settings } from "../config/settings.ts";
import type { RoutingConfigWatcher } from "../core/routing-snapshot.ts";
import type { Store } from "../store/open-store.ts";

export interface ConfigWatch {
  available: () => boolean;
  stop(): Promise<void>;
}

export async function watchConfiguration(settings: Readonly<Settings>, store: Store, routing: RoutingConfigWatcher, logger: Logger): Promise<ConfigWatch> {
  if (store.dialect !== "postgres" || settings.database === null) {
    await routing.start();
    return { available: () => true, stop: async () => routing.stop() };
  }
  // first load, without start(): start() would also begin polling
  await routing.refresh();
  // the listener (and pg) only in cluster mode: a SQLite node never loads them (issue 11, RSS)
  const { ConfigListener, serialTrigger } = await import("../store/config-listener.ts");
  const reload = serialTrigger(() => routing.refresh(), (error) => logger.log("error", "routing_reload_failed", { error }));
  const listener = new ConfigListener({
    connectionString: settings.database,
    onNotify: () => reload(),
    resync: () => routing.refresh(),
    onAvailability: (available, error) =>
      available ? logger.log("info", "store_reconnected", { version: routing.version }) : logger.log("error", "store_unreachable", { error }),
  });
  await listener.start();
  return {
    available: () => listener.available,
    stop: () => listener.stop(),
  };
}
