/**
 * startMailroute: assembles the running service from settings — store, live routing table,
 * SRS, delivery (MX resolver, SMTP client pool, ledger) and the inbound SMTP server — as one
 * explicit pipeline rather than a plugin registry. Used by `mailroute start` and by the
 * end-to-end tests, which get exactly what an operator runs.
 */
import type { AddressInfo } from "node:net";
import { ensureAdminToken } from "../core/tokens/operator-token.ts";
import { createTokenAuthenticator } from "../core/tokens/token-authenticator.ts";
import { VerificationLinks } from "../core/addresses/verification-links.ts";
import { createServices } from "../core/services.ts";
import { Access } from "../api/access.ts";
import type { FixedWindowCounter } from "../api/request-limits.ts";
import { expectedZoneRecords } from "../core/zone-dns-records.ts";
import { createVerificationMailer } from "../mail/verification-mail.ts";
import type { HealthChecks } from "../api/health-routes.ts";
import { createEventRecorder } from "../analytics/event-recorder.ts";
import { createLogger, type Logger } from "../analytics/structured-log.ts";
import { ensureDataDir, octal, type OnTightened } from "../config/data-dir.ts";
import { resolveNodeId } from "../config/node-id.ts";
import type { Settings } from "../config/settings.ts";
import { RoutingConfigWatcher } from "../core/routing-snapshot.ts";
import { createDeliveryStack } from "../delivery/delivery-stack.ts";
import type { PolicyFetcher } from "../delivery/mta-sts-fetch.ts";
import { dnsLookupFrom, type DnsLookup } from "../delivery/mx-resolver.ts";
import type { DeliveryLedger } from "../delivery/relay-message.ts";
import { SmtpClientPool, type SmtpClientPoolOptions } from "../delivery/smtp-client-pool.ts";
import { SrsRewriter } from "../delivery/srs-rewriter.ts";
import { createInboundServer, type InboundServer } from "../smtp/inbound-server.ts";
import { createInSessionDispatcher } from "../mail/dispatcher.ts";
import { createWorkerHandIn } from "../mail/hand-in.ts";
import { createMailCore } from "../mail/mail-core.ts";
import { createQueueDispatcher } from "../mail/queue-dispatcher.ts";
import { dnsblErrorsTotal, dnsErrorsTotal, queueRetriesTotal, reportPoolConnections, reportQueueStats } from "../analytics/metrics.ts";
import { startQueueRunner, type QueueRunner } from "../mail/queue-runner.ts";
import { queueStats } from "../store/repositories/delivery-queue-repository.ts";
import type { TlsCredentialsError } from "../smtp/tls-credentials.ts";
import { setUpCertificates } from "../tls/certificate-setup.ts";
import { DkimKeyStore } from "../delivery/dkim-keys.ts";
import { createSigningPool } from "../delivery/signing-pool.ts";
import { startStoreWriter } from "./store-writer-start.ts";
import { authenticateMessage } from "../inbound/authenticate-message.ts";
import { ClientLimits } from "../inbound/client-limits.ts";
import { createDnsblChecker } from "../inbound/dnsbl-checker.ts";
import { createDnsTxtResolver } from "../inbound/dns-txt-resolver.ts";
import { createNetworkMatcher } from "../inbound/trusted-networks.ts";
import { DEFAULT_ACCOUNT_ID as DEFAULT_ACCOUNT } from "../store/open-store.ts";
import { createKvNamespaces } from "../core/kv/kv-namespaces.ts";
import { storeR2 } from "../core/r2/r2-buckets.ts";
import { MAX_WAIT_SHARE } from "../mail/worker-step.ts";
import { InvocationLimiter } from "../workers/invocation-limiter.ts";
import { lazyWorkerRuntime } from "../workers/lazy-worker-runtime.ts";
import { admittedInvoker } from "../workers/admitted-invoker.ts";
import { nonEmailHandlers, storePlatformHandlers } from "../workers/handler-hosts.ts";
import { createWorkersAiRunner } from "../workers/workers-ai-client.ts";
import { QueueDispatcher } from "../workers/queue-dispatcher.ts";
import type { InvocationResult } from "../workers/worker-types.ts";
import { settleIntentsOfOwner, storeDeliveryLedger } from "../store/delivery-ledger-store.ts";
import { openStore, type Store } from "../store/open-store.ts";
import { readConfigVersion } from "../store/config-version.ts";
import { PendingWrites } from "../store/pending-writes.ts";
import { startHttpSide } from "./http-start.ts";
import { StartupError } from "./startup-error.ts";
import { startHousekeeping } from "./housekeeping.ts";
import { loadNodeSecrets, requireClusterKey } from "./node-secrets.ts";
import { watchConfiguration } from "./config-watch.ts";

export const LEDGER_TTL_DAYS = 7;
/** How long the activity log keeps events (Cloudflare shows about a month). */
export const EVENT_RETENTION_DAYS = 30;
/** Worker invocations running at once (each holds its message in memory: up to 25 MiB). */
export const WORKER_CONCURRENCY = 16;
/** Shares of WORKER_CONCURRENCY one account, and one worker, may hold: a slow worker delays only itself. */
export const WORKER_CONCURRENCY_PER_ACCOUNT = 12;
export const WORKER_CONCURRENCY_PER_WORKER = 8;
/** Message bytes running worker invocations may hold together. */
export const WORKER_MESSAGE_BUDGET_BYTES = 256 * 1024 * 1024;

export interface RunningMailroute {
  readonly settings: Readonly<Settings>;
  readonly store: Store;
  readonly smtp: AddressInfo;
  readonly http: AddressInfo;
  /** The HTTPS listener for MTA-STS policy hosts (--https-port), or null. */
  readonly https: AddressInfo | null;
  /** The token-less metrics listener (--metrics-port), or null. */
  readonly metrics: AddressInfo | null;
  /** Set when this start generated the admin token: print it once, it is stored only hashed. */
  readonly generatedAdminToken: string | null;
  readonly routing: RoutingConfigWatcher;
  readonly pool: SmtpClientPool;
  /** The durable queue's runner (queue delivery mode): `tick()` runs a pass now. */
  readonly queue: QueueRunner;
  /** This node's id (--node-id, or the one kept in the data directory). */
  readonly nodeId: string;
  /** The store writes that follow a sender's reply (ledger acceptances, activity events): `settled()` waits for them. */
  readonly afterReply: PendingWrites;
  close(): Promise<void>;
}

export interface StartOverrides {
  logger?: Logger;
  /** Outbound client timeouts (tests shorten them). */
  client?: Partial<SmtpClientPoolOptions>;
  dns?: DnsLookup;
  configPollMs?: number;
  /** MTA-STS policy fetches (tests serve policies from loopback). */
  mtaStsFetch?: PolicyFetcher;
  /** Per-query DNS bounds for authentication and block lists (tests shorten them). */
  authDns?: { timeoutMs?: number; tries?: number; maxTimeoutMs?: number };
  /** Benchmarks only: measure relay without inbound authentication. */
  skipAuthentication?: boolean;
  closeTimeoutMs?: number;
  /** API request limits (tests tighten or loosen them). */
  apiLimits?: { tokenLimit?: FixedWindowCounter; failureLimit?: FixedWindowCounter };
  /** ACME timing (tests renew at once). */
  acme?: { renewBeforeMs?: number; checkEveryMs?: number };
}

export async function startMailroute(settings: Readonly<Settings>, overrides: StartOverrides = {}): Promise<RunningMailroute> {
  const baseLogger = overrides.logger ?? createLogger({ level: settings.logLevel });
  // Private before anything is written into it (issue 8 item 4): keys, secrets, the database.
  const onTightened: OnTightened = (path, from, to) => baseLogger.log("warn", "data_permissions_tightened", { path, from: octal(from), to: octal(to) });
  try {
    ensureDataDir(settings.dataDir, onTightened);
  } catch (error) {
    // Named as a store failure: "cannot open the data directory …, mailroute must be able to write it".
    throw new StartupError("store", settings.dataDir, error);
  }
  // every log line says which node wrote it (issue 13); events carry it too
  const nodeId = resolveNodeId(settings.nodeId, settings.dataDir);
  const logger = baseLogger.child({ node_id: nodeId });
  // What has started, in order. A start that fails part-way and close() both undo it in reverse:
  // one list, so nothing started is left running and nothing is closed twice or forgotten.
  const started: { name: string; undo: () => unknown }[] = [];
  const undoAll = async (): Promise<void> => {
    for (const step of started.splice(0).reverse()) {
      try {
        await step.undo();
      } catch (error) {
        logger.log("warn", "stop_step_failed", { step: step.name, error });
      }
    }
  };
  const failStart = async (error: unknown, wrap?: (cause: unknown) => Error): Promise<never> => {
    await undoAll();
    throw wrap === undefined ? error : wrap(error);
  };
  requireClusterKey(settings);
  // The one shared, caching resolver (DESIGN §2): authentication, block lists, reverse DNS and
  // delivery all ask through it. Built first: it refuses a bad --dns-servers entry by name.
  const dnsResolver = createDnsTxtResolver({
    servers: settings.dnsServers.length > 0 ? settings.dnsServers : undefined,
    onFailure: (type, code) => dnsErrorsTotal.inc({ type, code }),
    ...overrides.authDns,
  });
  // Then delivery: it validates --ca-file and --transport before anything listens.
  const delivery = createDeliveryStack({
    hostname: settings.hostname,
    outboundPort: settings.outboundPort,
    transport: settings.transport,
    dnsServers: settings.dnsServers,
    caFile: settings.caFile,
    dns: overrides.dns ?? dnsLookupFrom(dnsResolver),
    client: overrides.client,
    mtaStsFetch: overrides.mtaStsFetch,
    logger,
  });
  started.push({ name: "delivery", undo: () => delivery.close() });
  const pool = delivery.pool;
  reportPoolConnections(() => pool.openConnections);
  const storeFailure = (cause: unknown) => new StartupError("store", settings.database ?? settings.dataDir, cause);
  const store = await openStore({ dataDir: settings.dataDir, databaseUrl: settings.database ?? undefined, onPermissionsTightened: onTightened, onPoolError: (error) => logger.log("warn", "store_pool_error", { error }) }).catch((error: unknown) => failStart(error, storeFailure));
  started.push({ name: "store", undo: () => store.close() });
  // keys and secrets: files on one node, sealed rows shared by a cluster (refuses a wrong cluster key)
  const secrets = await loadNodeSecrets(settings, store, logger, onTightened).catch((error: unknown) => failStart(error));
  const routing = new RoutingConfigWatcher(store.db, {
    intervalMs: overrides.configPollMs ?? 250,
    onReload: (version, table) => logger.log("info", "routing_reloaded", { version, zones: table.zones.size, rules: table.rules.size }),
    onError: (error) => logger.log("error", "routing_reload_failed", { error }),
  });
  // SQLite polls the version; PostgreSQL pushes changes (LISTEN/NOTIFY) and never polls
  const configWatch = await watchConfiguration(settings, store, routing, logger).catch((error: unknown) => failStart(error, storeFailure));
  started.push({ name: "configuration watch", undo: () => configWatch.stop() });

  const srs = new SrsRewriter({ secrets: secrets.srs, domain: settings.hostname, postsrsdCompat: settings.srsPostsrsdCompat });
  // attempts this node id left in flight when its previous process died: sent again on retry now
  const recoveredIntents = await settleIntentsOfOwner(store.db, nodeId, new Date()).catch((error: unknown) => failStart(error, storeFailure));
  if (recoveredIntents > 0) logger.log("warn", "ledger_intents_recovered", { count: recoveredIntents });
  // Hourly: expired ledger entries and KV values, the activity log's old events; one node at a time
  const housekeeping = startHousekeeping({ db: store.db, nodeId, logger, eventRetentionDays: EVENT_RETENTION_DAYS });
  started.push({ name: "housekeeping", undo: () => housekeeping.stop() });

  const trusted = createNetworkMatcher(settings.trustedNetworks);
  // refuses a bad --dkim-selector here, naming it, before the signing threads start; also serves the API's DNS records
  const keys = new DkimKeyStore({ secrets: secrets.dkim, selector: settings.dkimSelector, ed25519: settings.dkimEd25519 });
  const onTlsError = (error: TlsCredentialsError) => logger.log("error", "tls_reload_failed", { file: error.file, error });
  // STARTTLS credentials, ACME, the HTTPS policy host and the MTA-STS mode they allow
  const certificates = await setUpCertificates(settings, { logger, routing: () => routing.table, onTlsError, ...(overrides.acme ? { acme: overrides.acme } : {}) }).catch((error: unknown) => failStart(error));
  started.push({ name: "certificates", undo: () => certificates.close() });
  const tls = certificates.tls;
  tls.onChange((_pair, summary) => logger.log("info", "tls_reloaded", { subject: summary.subject, valid_to: summary.validTo }));
  const limits = new ClientLimits({
    maxConnectionsPerIp: settings.maxConnectionsPerIp,
    messagesPerMinute: settings.messagesPerMinutePerIp,
    maxCommandsBeforeMail: settings.maxCommandsBeforeMail,
    exempt: settings.trustedNetworks,
  });
  const dnsbl = createDnsblChecker({ zones: settings.dnsbl, lookupA: (name, options) => dnsResolver(name, "A", options) as Promise<string[]>, onUnavailable: () => dnsblErrorsTotal.inc() });

  // the store writes that follow a sender's reply: the activity log waits for them, and shutdown
  const afterReply = new PendingWrites();
  const services = createServices(store, { secretBox: secrets.secretBox, dataDir: settings.dataDir, aiEndpoint: settings.workersAiUrl !== null, pendingWrites: afterReply });
  // env.AI.run() goes to the operator's endpoint, if one is configured (no model runs here)
  const runAi = settings.workersAiUrl === null ? undefined : createWorkersAiRunner({ url: settings.workersAiUrl, token: settings.workersAiToken });
  const platformFor = (account: string) => ({ ...storePlatformHandlers(store.db, account), ...(runAi === undefined ? {} : { runAi }) });
  // bundle loading and console lines on the hot path: the runtime's narrow view, not an actor's change
  const runtimeWorkers = services.runtimeWorkers;
  // One workerd process per account, started on first use; never in the SMTP process.
  const r2 = storeR2(store);
  const workerRuntime = lazyWorkerRuntime({
    outboundAllow: settings.workerFetchAllow,
    memoryLimitMb: settings.workerMemoryMb,
    ...(r2 === undefined ? {} : { r2 }),
    onEvent: (event) => logger.log("info", "worker_runtime", { ...event }),
  });
  started.push({ name: "worker runtime", undo: () => workerRuntime.dispose() });

  const workerLimiter = new InvocationLimiter({
    maxRunning: WORKER_CONCURRENCY,
    maxPerAccount: WORKER_CONCURRENCY_PER_ACCOUNT,
    maxPerWorker: WORKER_CONCURRENCY_PER_WORKER,
    maxBytes: WORKER_MESSAGE_BUDGET_BYTES,
  });
  // DKIM signing and ARC sealing on worker threads: the other cores (issue 11); --signing-threads 0
  // signs on this thread instead, ~30 MiB less for a node whose memory matters more than its CPU
  // (SQLite: the first signing thread also runs the store writer, below)
  const sqliteWriterFile = settings.storeWriterThread ? store.sqliteFile : undefined;
  // --signing-threads 0: a copy signed while no other SMTP session has sent a command for 100 ms
  // has its key operations made inline, without a trip to libuv's pool (signing-pool.ts
  // keyOperationsHere); a connection held open and idle does not count
  let inbound: InboundServer | null = null;
  const callerIdle = () => (inbound?.sessionsActiveWithin(100) ?? 0) <= 1;
  const poolOptions = { keys, hostname: settings.hostname, callerIdle, ...(sqliteWriterFile === undefined ? {} : { hostStoreWriter: sqliteWriterFile }) };
  const signing = await createSigningPool({ ...poolOptions, ...(settings.signingThreads === null ? {} : { threads: settings.signingThreads }) }).catch((error: unknown) => failStart(error));
  started.push({ name: "signing threads", undo: () => signing.close() });
  // Stopped before the signing threads (undone in reverse), so its jobs in flight finish first.
  const writer = await startStoreWriter(store, { onThread: settings.storeWriterThread, host: signing.writerPort }).catch((error: unknown) => failStart(error, storeFailure));
  if (writer !== null) started.push({ name: "store writer", undo: () => writer.close() });
  // undone after the SMTP listener and the queue runner stop, before the writer and the store close
  started.push({ name: "writes after replies", undo: async () => (await afterReply.settledWithin(overrides.closeTimeoutMs ?? 10_000)) || logger.log("warn", "writes_after_reply_unsettled", { count: afterReply.size }) });
  const ledger: DeliveryLedger = storeDeliveryLedger(store.db, { ttlDays: LEDGER_TTL_DAYS, owner: nodeId, writer });
  const signer = signing.sign;
  const relayDeps = { send: delivery.send, ledger, deadlineMs: settings.relayTimeoutMs, logger };

  const events = createEventRecorder(store.db, logger, (zone) => routing.table.zones.get(zone)?.account ?? null, nodeId, writer);
  const dispatcher = createInSessionDispatcher(relayDeps);
  // Queue delivery mode (issue 13): zones that ask for it get 250 once a deferred copy is stored
  reportQueueStats(() => queueStats(store.db));
  const queueTiming = { minBackoffMs: settings.queueMinBackoffMs, maxBackoffMs: Math.max(settings.queueMinBackoffMs, settings.queueMaxBackoffMs), maxAgeMs: settings.queueMaxAgeMs };
  const queueDispatcher = createQueueDispatcher({ inSession: dispatcher, store, timing: queueTiming, logger, onQueued: () => queueRunner.wake() });
  const queueRunner: QueueRunner = startQueueRunner({
    store,
    relay: dispatcher,
    sign: signer,
    hostname: settings.hostname,
    node: nodeId,
    timing: queueTiming,
    relayDeadlineMs: settings.relayTimeoutMs,
    pollMs: settings.queuePollMs,
    logger,
    onAttempt: (status) => queueRetriesTotal.inc({ outcome: status }),
  });
  started.push({ name: "queue runner", undo: () => queueRunner.stop() });
  const mail = createMailCore({
    deps: {
      hostname: settings.hostname,
      authenticate: overrides.skipAuthentication ? null : authenticateMessage,
      resolver: dnsResolver,
      authTimeoutMs: 20_000,
      sign: signer,
      srs,
      dispatcher,
      queue: queueDispatcher,
      workers: {
        account: DEFAULT_ACCOUNT,
        deadlineMs: settings.workerDeadlineMs,
        load: (account, script) => runtimeWorkers.load(account, script),
        admit: (ticket, waitMs) => workerLimiter.acquire(ticket, waitMs),
        invoke: (definition, invocation, handlers, options) => workerRuntime.invoke(definition, invocation, handlers, options),
        kv: (account) => createKvNamespaces(store.db, account),
        platform: platformFor,
        recordLogs: (account, script, logs) => runtimeWorkers.appendLogs(account, script, logs),
        routing: () => routing.table,
      },
      afterReply,
    },
    routing: () => routing.table,
    srsAcceptAnySender: settings.srsPostsrsdCompat,
    events,
    logger,
  });
  const server = (inbound = createInboundServer(
    {
      hostname: settings.hostname,
      maxMessageSize: settings.maxMessageSize,
      maxRecipients: settings.maxRecipients,
      socketTimeoutMs: settings.smtpTimeoutMs,
      closeTimeoutMs: overrides.closeTimeoutMs ?? 10_000,
      maxClients: settings.maxClients,
      tls,
      proxyProtocol: settings.proxyProtocol,
      transactionTimeoutMs: settings.smtpTransactionTimeoutMs,
      minDataRate: settings.smtpMinDataRate,
      greetPauseMs: settings.greetPauseMs,
    },
    { mail, limits, dnsbl, trusted, events, logger, storeAvailable: configWatch.available },
  ));
  const smtp: AddressInfo = await server.listen(settings.smtpPort, settings.smtpHost).catch((error: unknown) => failStart(error, (cause) => new StartupError("smtp-listen", `${settings.smtpHost}:${settings.smtpPort}`, cause)));
  started.push({ name: "SMTP listener", undo: () => server.close() });
  logger.log("info", "smtp_listening", { host: smtp.address, port: smtp.port, hostname: settings.hostname });

  // Email Workers beyond email(): queue consumers and fetch() handlers, same runtime, admission and deadline
  const invokeWorker = admittedInvoker({
    limiter: workerLimiter,
    invoke: (definition, invocation, handlers, options) => workerRuntime.invoke(definition, invocation, handlers, options),
    deadlineMs: settings.workerDeadlineMs,
    maxWaitShare: MAX_WAIT_SHARE,
  });
  const handlersFor = (account: string) => nonEmailHandlers(createKvNamespaces(store.db, account), platformFor(account));
  const recordWorkerLogs = (account: string, script: string, logs: InvocationResult["logs"]) => runtimeWorkers.appendLogs(account, script, logs);
  const queues = new QueueDispatcher({ db: store.db, workers: runtimeWorkers, invoke: invokeWorker, handlers: handlersFor, recordLogs: recordWorkerLogs, onEvent: (event) => logger.log("info", "worker_queue", event) });

  const generatedAdminToken = await ensureAdminToken(store.db, settings.adminToken);
  const verification = new VerificationLinks(store, { publicUrl: settings.publicUrl ?? `http://${settings.httpHost.includes(":") ? `[${settings.httpHost}]` : settings.httpHost}:${settings.httpPort}` });
  const sendVerification = createVerificationMailer({ hostname: settings.hostname, sign: signer, dispatcher });
  // Verification requests are written by any front end (the CLI has no delivery stack): the
  // server sends them when the configuration moves, and retries failed ones every minute.
  let flushing: Promise<unknown> = Promise.resolve();
  const flushVerifications = () => {
    flushing = flushing
      .then(() => verification.flush(sendVerification, (error, email) => logger.log("warn", "verification_send_failed", { rcpt: email, error })))
      .catch((error: unknown) => logger.log("warn", "verification_flush_failed", { error }));
    return flushing;
  };
  const unwatchVerifications = routing.onChange(flushVerifications);
  const verificationRetry = setInterval(flushVerifications, 60_000);
  verificationRetry.unref();
  started.push({ name: "verification mail", undo: () => (unwatchVerifications(), clearInterval(verificationRetry)) });
  void flushVerifications();
  let closing: Promise<void> | null = null;
  const health: HealthChecks = { smtpListening: () => server.listening, pingStore: () => readConfigVersion(store.db), workerRuntime: () => workerRuntime.health(), accepting: () => closing === null };
  // the API and dashboard app is built on the first request that needs it (api/http-front.ts)
  const buildHttpApp = async () => (await import("../api/http-server.ts")).createHttpServer({
    hostname: settings.hostname,
    routing: () => routing.table,
    authenticate: createTokenAuthenticator(store.db),
    logger,
    runWorker: createWorkerHandIn(mail, { maxMessageSize: settings.maxMessageSize }),
    maxMessageSize: settings.maxMessageSize,
    verification,
    api: {
      ...overrides.apiLimits,
      access: new Access(services, store),
      hostname: settings.hostname,
      dnsRecords: async (zone) => expectedZoneRecords({ zone, hostname: settings.hostname, dkim: await keys.publicRecords(zone) }),
    },
    mtaStsMode: certificates.mtaStsMode,
    acmeChallenges: certificates.acmeChallenges,
    health,
    workerFetch: { account: DEFAULT_ACCOUNT, zoneAccounts: () => new Map([...routing.table.zones].map(([name, zone]) => [name, zone.account])), routes: (account) => runtimeWorkers.fetchRoutes(account), load: (account, name) => runtimeWorkers.load(account, name), invoke: invokeWorker, handlers: handlersFor, recordLogs: recordWorkerLogs, maxBodyBytes: settings.maxMessageSize },
  });
  const { http, https, metrics } = await startHttpSide({ settings, health, buildApp: buildHttpApp, certificates, logger, started, failStart });
  queues.start();
  started.push({ name: "worker queue consumers", undo: () => queues.stop() });

  return {
    settings,
    store,
    smtp,
    http,
    https,
    metrics,
    generatedAdminToken,
    routing,
    pool,
    queue: queueRunner,
    nodeId,
    afterReply,
    close() {
      closing ??= (async () => {
        await undoAll();
        logger.log("info", "stopped");
      })();
      return closing;
    },
  };
}
