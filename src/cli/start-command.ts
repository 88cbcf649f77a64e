/**
 * `mailroute start`: load settings (flags, MAILROUTE_* env, defaults), start the service and
 * stop it cleanly on SIGINT/SIGTERM. Sets the process umask to 077 first: data at rest is
 * private (the data directory module also sets modes explicitly; this covers everything else).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadSettings, SETTING_SPECS, SettingsError } from "../config/settings.ts";
import { CliError, usageError } from "./cli-error.ts";
import type { Output } from "./config-commands.ts";
import { startMailroute } from "./start-service.ts";

export function startUsage(): string {
  const flags = Object.values(SETTING_SPECS).map((spec) => `  --${spec.flag.padEnd(18)} ${spec.describe}${spec.default ? ` (default ${spec.default})` : ""}`);
  return ["mailroute start [flags]", ...flags].join("\n");
}

export async function startCommand(argv: string[], output: Output): Promise<void> {
  // Everything the service writes (database, -wal/-shm, keys, worker runtime files) is private
  // to its user, whatever the module writing it asks for (`npm start` does not go through bin/).
  process.umask(0o077);
  const options: ParseArgsConfig["options"] = {};
  for (const spec of Object.values(SETTING_SPECS)) options[spec.flag] = { type: "string" };
  let flags: Record<string, string | undefined>;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | undefined>;
  } catch (error) {
    throw usageError((error as Error).message, startUsage());
  }
  let settings;
  try {
    settings = loadSettings(flags);
  } catch (error) {
    if (error instanceof SettingsError) throw new CliError(error.message, { exitCode: 2, hint: `or set ${"MAILROUTE_" + error.setting.toUpperCase().replaceAll("-", "_")}` });
    throw error;
  }
  const service = await startMailroute(settings).catch((error: Error) => {
    throw new CliError(error.message, { hint: "another process may hold the port: pass --smtp-port, or stop it" });
  });
  if (service.generatedAdminToken !== null) {
    output.out(`admin token (shown once, stored only as a hash; pass --admin-token to set your own): ${service.generatedAdminToken}`);
  }
  output.out(`mailroute is receiving mail on ${service.smtp.address}:${service.smtp.port} as ${settings.hostname}; HTTP on ${service.http.address}:${service.http.port}; data in ${settings.dataDir}`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void service.close().then(resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
