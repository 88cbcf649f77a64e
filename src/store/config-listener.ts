/**
 * Configuration changes pushed, not polled (cluster mode, PostgreSQL): a dedicated `pg` client
 * LISTENs on `mailroute_config`, which the config_version trigger (migration 0009) NOTIFYs in
 * the bumping transaction — so a node hears of a change only once it is committed, within
 * milliseconds, and no node reads config_version on a timer.
 *
 * Promises:
 * - `start` resolves once the node listens and has synchronised (read the version) once; it
 *   rejects, leaving nothing open, when the database cannot be reached;
 * - the connection is watched: an error, an end, or a heartbeat (`SELECT 1`) that fails or
 *   does not answer within its bound marks the store unavailable at once (`available` false:
 *   the SMTP side answers 451 rather than route on a configuration that may be stale), then
 *   it reconnects with bounded backoff, LISTENs again and resynchronises — a change made while
 *   it was away is picked up by reading the version, not by a notification it missed — and
 *   only then is the store available again;
 * - `stop` ends the client and every timer; nothing reconnects after it.
 */
import pg from "pg";

export const CONFIG_CHANNEL = "mailroute_config";

export interface ConfigListenerOptions {
  connectionString: string;
  /** A notification arrived (the new version is its payload). */
  onNotify: (version: number) => void;
  /** After each (re)connect: read the version and reload if it moved. A rejection counts as still unavailable. */
  resync: () => Promise<void>;
  onAvailability?: (available: boolean, error?: unknown) => void;
  /** How often an idle connection is checked, ms (default 2,000). */
  heartbeatMs?: number;
  /** Bound on connecting and on each heartbeat, ms (default 3,000). */
  timeoutMs?: number;
  /** Reconnect backoff, ms: doubles from min to max (default 100 … 2,000). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export class ConfigListener {
  readonly #options: ConfigListenerOptions;
  #client: pg.Client | null = null;
  #available = false;
  #stopped = false;
  #heartbeat: NodeJS.Timeout | null = null;
  #reconnect: NodeJS.Timeout | null = null;
  #backoff: number;

  constructor(options: ConfigListenerOptions) {
    this.#options = options;
    this.#backoff = options.reconnectMinMs ?? 100;
  }

  /** Whether the node is connected, listening and synchronised. */
  get available(): boolean {
    return this.#available;
  }

  async start(): Promise<void> {
    await this.#connect();
    this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatMs ?? 2_000);
    this.#heartbeat.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    if (this.#reconnect !== null) clearTimeout(this.#reconnect);
    const client = this.#client;
    this.#client = null;
    this.#available = false;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const timeoutMs = this.#options.timeoutMs ?? 3_000;
    const client = new pg.Client({ connectionString: this.#options.connectionString, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, keepAlive: true });
    // 'error' must always have a listener: pg emits it on the client, and an unheard one crashes the process
    client.on("error", (error) => this.#lost(client, error));
    client.on("end", () => this.#lost(client, new Error("connection to the database ended")));
    client.on("notification", (message) => {
      if (message.channel === CONFIG_CHANNEL) this.#options.onNotify(Number(message.payload));
    });
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CONFIG_CHANNEL}`);
      // after LISTEN: a change committed from here on is notified, one before it is read here
      await this.#options.resync();
    } catch (error) {
      if (this.#client === client) this.#client = null;
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#stopped || this.#client !== client) return;
    this.#backoff = this.#options.reconnectMinMs ?? 100;
    this.#setAvailable(true);
  }

  #beat(): void {
    const client = this.#client;
    if (client === null || !this.#available) return;
    client.query("SELECT 1").catch((error: unknown) => this.#lost(client, error));
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#stopped || this.#client !== client) return;
    this.#client = null;
    this.#setAvailable(false, error);
    void client.end().catch(() => undefined);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#reconnect !== null) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#options.reconnectMaxMs ?? 2_000);
    this.#reconnect = setTimeout(() => {
      this.#reconnect = null;
      if (this.#stopped) return;
      this.#connect().catch((error: unknown) => {
        this.#options.onAvailability?.(false, error);
        this.#scheduleReconnect();
      });
    }, delay);
    this.#reconnect.unref();
  }

  #setAvailable(available: boolean, error?: unknown): void {
    if (this.#available === available) return;
    this.#available = available;
    this.#options.onAvailability?.(available, error);
  }
}

/**
 * Runs `refresh` for every trigger, never two at once, and never lets a trigger go unserved:
 * one that arrives while a refresh runs causes one more run after it (the running one may
 * have read the version before the change committed).
 */
export function serialTrigger(refresh: () => Promise<void>, onError: (error: unknown) => void): () => void {
  let running = false;
  let again = false;
  const run = (): void => {
    running = true;
    refresh()
      .catch(onError)
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return function trigger(): void {
    if (running) again = true;
    else run();
  };
}
