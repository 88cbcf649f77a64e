/**
 * `mailroute worker …`: deploy Email Workers from their own folders (wrangler files, TypeScript,
 * npm dependencies), list and remove them, set secrets, read and write their KV namespaces,
 * follow their console output, run them on a message, query their D1 databases and Analytics
 * Engine datasets. One module per subcommand group; this one parses the flags, checks which
 * apply to the subcommand, and dispatches. Every subcommand goes through the account's services
 * on an existing store: a deploy, removal or secret change is audited and bumps the config
 * version, so a running server picks it up without a restart.
 */
import { parseArgs } from "node:util";
import { DEFAULT_ACCOUNT_ID } from "../../store/open-store.ts";
import { usageError } from "../cli-error.ts";
import type { Output } from "../command-output.ts";
import { analyticsCommand } from "./analytics-command.ts";
import { d1Command } from "./d1-command.ts";
import { deployCommand } from "./deploy-command.ts";
import { kvCommand } from "./kv-command.ts";
import { secretCommand } from "./secret-command.ts";
import { tailCommand } from "./tail-command.ts";
import { testCommand } from "./test-command.ts";
import { COMMON, describeBindings, emit, kib, need, OPTIONS, table, USAGE, VERB_OPTIONS, withWorkerServices, type Context, type Option, type Values, type WorkerCommandIo } from "./worker-cli-context.ts";

export type { WorkerCommandIo } from "./worker-cli-context.ts";

export async function workerCommand(argv: string[], output: Output, io: WorkerCommandIo = {}): Promise<void> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] };
  } catch (error) {
    throw usageError((error as Error).message, USAGE);
  }
  const [verb] = parsed.positionals;
  const allowed = verb === undefined ? undefined : VERB_OPTIONS[verb];
  if (allowed === undefined) throw usageError(verb === undefined ? "missing subcommand" : `unknown subcommand "${verb}"`, USAGE);
  for (const option of Object.keys(parsed.values) as Option[]) {
    if (!COMMON.includes(option) && !allowed.includes(option)) throw usageError(`--${option} does not apply to worker ${verb}`, USAGE);
  }
  const context: Context = { ...parsed, output, io, account: (parsed.values.account as string | undefined) ?? DEFAULT_ACCOUNT_ID };
  switch (verb) {
    case "deploy":
      return deployCommand(context);
    case "list":
      return withWorkerServices(context, async (services) => {
        const list = await services.workers.list();
        emit(context, list, list.length === 0 ? ["no workers yet: mailroute worker deploy <name> <entry>"] : table([["NAME", "VERSION", "BINDINGS", "SIZE", "MODIFIED"], ...list.map((w) => [w.name, w.version.slice(0, 12), describeBindings(w), kib(w.bundleSize), w.modifiedAt])]));
      });
    case "remove":
      return withWorkerServices(context, async (services) => {
        const removed = await services.workers.remove(need(context, 1, "worker name"));
        emit(context, removed, [`removed worker ${removed.name}${removed.bindings.secrets.length > 0 ? ` and its ${removed.bindings.secrets.length} secret(s)` : ""}; rules that run it have nothing to run until it is deployed again`]);
      });
    case "secret":
      return secretCommand(context);
    case "kv":
      return kvCommand(context);
    case "tail":
      return tailCommand(context);
    case "test":
      return testCommand(context);
    case "d1":
      return d1Command(context);
    case "analytics":
      return analyticsCommand(context);
  }
}

