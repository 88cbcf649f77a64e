/**
 * `mailroute start`: load settings (flags, MAILROUTE_* env, defaults), start the service and
 * stop it cleanly on SIGINT/SIGTERM. Sets the process umask to 077 first: data at rest is
 * private (the data directory module also sets modes explicitly; this covers everything else).
 *
 * Promises:
 * - stdout carries only the structured log and the one-line banner: a generated admin token is
 *   shown on the terminal (stderr) or written to `<data-dir>/admin-token` (0600), never logged;
 * - `--admin-token` still works but is warned about: every local user can read it in
 *   /proc/<pid>/cmdline (prefer --admin-token-file or MAILROUTE_ADMIN_TOKEN);
 * - a --hostname that is not a fully qualified domain name is refused for production use
 *   (port 25, ACME) unless --allow-short-hostname, and warned about loudly otherwise;
 * - a start failure says what failed (busy port, forbidden port, certificate, database, data
 *   directory), see start-failure.ts.
 */
import { createLogger } from "../analytics/structured-log.ts";
import { hostnameProblem } from "../config/host-name-check.ts";
import { envName, loadSettings, SETTING_SPECS, SettingsError, type Settings } from "../config/settings.ts";
import { announceGeneratedToken, type TokenTerminal } from "./admin-token-notice.ts";
import { CliError } from "./cli-error.ts";
import { byFlagName, parseCommand, settingFlags, type LeafSpec } from "./command-spec.ts";
import type { Output } from "./command-output.ts";
import { startIdleMemoryRelease } from "./idle-memory-release.ts";
import cluster from "node:cluster";
import { preparePrimary } from "./primary-preflight.ts";
import { PROCESS_SLOT_ENV } from "./process-messages.ts";
import { superviseProcesses } from "./process-supervisor.ts";
import { explainStartFailure } from "./start-failure.ts";

// settings that are switches: `--allow-short-hostname` alone means true
const SWITCHES = new Set(["allow-short-hostname"]);

export const START_SPEC: LeafSpec = {
  name: "start",
  summary: "run the MX (SMTP) service; creates the store in --data-dir if there is none",
  options: settingFlags(Object.values(SETTING_SPECS), SWITCHES),
  example: "mailroute start --data-dir /var/lib/mailroute --hostname mx.example.com",
};

export async function startCommand(argv: string[], output: Output, terminal: TokenTerminal = process.stderr): Promise<void> {
  // Everything the service writes (database, -wal/-shm, keys, worker runtime files) is private
  // to its user, whatever the module writing it asks for (`npm start` does not go through bin/).
  process.umask(0o077);
  const { values } = parseCommand<Record<string, unknown>>(START_SPEC, argv);
  const flags = byFlagName(values, Object.values(SETTING_SPECS).map((spec) => spec.flag));
  let settings: Readonly<Settings>;
  try {
    settings = loadSettings(flags);
  } catch (error) {
    if (error instanceof SettingsError) throw new CliError(error.message, { exitCode: 2, hint: `or set ${envName(error.setting)}` });
    throw error;
  }
  const logger = createLogger({ level: settings.logLevel });
  // a service process of --processes n: the primary already warned, and prints for all (issue 11)
  if (cluster.isWorker) {
    const { runServiceProcess } = await import("./service-process.ts");
    return runServiceProcess(settings, Number(process.env[PROCESS_SLOT_ENV] ?? "1"), logger);
  }
  const warn = (line: string) => terminal.write(`mailroute start: warning: ${line}\n`);

  if (flags["admin-token"] !== undefined) {
    warn("--admin-token is visible to every local user in the process list (/proc/<pid>/cmdline); use --admin-token-file <file> or MAILROUTE_ADMIN_TOKEN");
    logger.log("warn", "admin_token_on_command_line", { hint: "use --admin-token-file or MAILROUTE_ADMIN_TOKEN" });
  }
  const problem = hostnameProblem(settings.hostname);
  if (problem !== null) {
    const production = settings.smtpPort === 25 || settings.acmeDirectory !== null;
    if (production && !settings.allowShortHostname) {
      throw new CliError(`--hostname: ${problem}; an MX on ${settings.acmeDirectory !== null ? "ACME certificates" : "port 25"} needs the fully qualified name its MX record points at`, {
        exitCode: 2,
        hint: "pass --hostname mx.example.com (or MAILROUTE_HOSTNAME), or --allow-short-hostname to start anyway",
      });
    }
    warn(`--hostname: ${problem}. Senders see it in EHLO and SRS addresses, and "mailroute doctor" will not propose DNS records for it: pass --hostname mx.example.com`);
    logger.log("warn", "hostname_not_fqdn", { hostname: settings.hostname, problem });
  }

  if (settings.processes > 1) return startProcesses(argv, settings, output, terminal, logger);
  // Listening from before the service starts: it answers SMTP before startMailroute resolves, and
  // a SIGTERM then (a supervisor stopping it as soon as it greets) found no handler and killed it
  // without its clean stop. One asked for while starting is honoured once started; a second one
  // while still starting (a start stuck on a lock, say) ends the process at once, as before.
  const stopAsked = stopSignal();
  // loaded here: the primary of --processes n needs none of the service's modules
  const { startMailroute } = await import("./start-service.ts");
  const service = await startMailroute(settings, { logger }).catch((error: unknown) => {
    stopAsked.cancel();
    throw explainStartFailure(error, settings);
  });
  stopAsked.started();
  if (service.generatedAdminToken !== null) {
    announceGeneratedToken(service.generatedAdminToken, { terminal, dataDir: settings.dataDir, logger });
  }
  if (!stopAsked.asked) output.out(`mailroute is receiving mail on ${service.smtp.address}:${service.smtp.port} as ${settings.hostname}; HTTP on ${service.http.address}:${service.http.port}; data in ${settings.dataDir}`);
  // per process, not in startMailroute: a collection and a trim act on the whole process
  const memoryRelease = settings.releaseIdleMemory ? startIdleMemoryRelease(logger) : null;
  await stopAsked.promise;
  memoryRelease?.stop();
  await service.close();
}

/** SIGINT or SIGTERM, once: `promise` settles on the first; a second before `started()` exits at once. */
function stopSignal(): { promise: Promise<void>; readonly asked: boolean; started(): void; cancel(): void } {
  let asked = false;
  let starting = true;
  let resolve!: () => void;
  const promise = new Promise<void>((settle) => (resolve = settle));
  const onSignal = (signal: NodeJS.Signals) => {
    if (asked && starting) process.exit(signal === "SIGINT" ? 130 : 143);
    asked = true;
    if (!starting) off();
    resolve();
  };
  const off = () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    promise,
    get asked() {
      return asked;
    },
    started() {
      starting = false;
      if (asked) off();
    },
    cancel: off,
  };
}

/** --processes n (issue 11): the admin token and the banner once, here; the service in n forked processes. */
async function startProcesses(argv: string[], settings: Readonly<Settings>, output: Output, terminal: TokenTerminal, logger: ReturnType<typeof createLogger>): Promise<void> {
  const { generatedAdminToken } = await preparePrimary(settings, logger).catch((error: unknown) => {
    throw explainStartFailure(error, settings);
  });
  // shown now, before any process can fail: it is stored already, and a later start would not make another
  if (generatedAdminToken !== null) announceGeneratedToken(generatedAdminToken, { terminal, dataDir: settings.dataDir, logger });
  // the primary too: once its processes are forked it only supervises, and the pages its start-up
  // touched (migrations, the store, the runtime) are most of what it holds
  const memoryRelease = settings.releaseIdleMemory ? startIdleMemoryRelease(logger) : null;
  try {
    await superviseProcesses({
      processes: settings.processes,
      argv,
      logger,
      ready(first) {
        output.out(`mailroute is receiving mail on ${first.smtp.address}:${first.smtp.port} as ${settings.hostname}; HTTP on ${first.http.address}:${first.http.port}; data in ${settings.dataDir}; ${settings.processes} processes`);
      },
    });
  } finally {
    memoryRelease?.stop();
  }
}
