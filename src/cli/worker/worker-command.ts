/**
 * `mailroute worker …`: deploy Email Workers from their own folders (wrangler files, TypeScript,
 * npm dependencies), list and remove them, set secrets, read and write their KV namespaces,
 * follow their console output, run them on a message, query their D1 databases and Analytics
 * Engine datasets. One module per subcommand group; this one parses argv with commander against
 * WORKER_SPEC (the same declaration `--help` shows) and dispatches. Every subcommand goes through the account's services
 * on an existing store: a deploy, removal or secret change is audited and bumps the config
 * version, so a running server picks it up without a restart.
 */
import { Option } from "commander";
import { DEFAULT_ACCOUNT_ID } from "../../store/open-store.ts";
import { parseCommand } from "../command-spec.ts";
import type { Output } from "../command-output.ts";
import { analyticsCommand } from "./analytics-command.ts";
import { d1Command } from "./d1-command.ts";
import { deployCommand } from "./deploy-command.ts";
import { kvCommand } from "./kv-command.ts";
import { secretCommand } from "./secret-command.ts";
import { tailCommand } from "./tail-command.ts";
import { testCommand } from "./test-command.ts";
import { describeBindings, emit, FLAG_NAMES, kib, need, table, WORKER_SPEC, withWorkerServices, type Context, type Values, type WorkerCommandIo } from "./worker-cli-context.ts";

export type { WorkerCommandIo } from "./worker-cli-context.ts";

export async function workerCommand(argv: string[], output: Output, io: WorkerCommandIo = {}): Promise<void> {
  // commander parses against WORKER_SPEC (unknown flags, flags of another subcommand, missing
  // arguments: usage errors with "did you mean"); the modules read values by flag name
  const { verb, operands, values: parsed } = parseCommand<Record<string, unknown>>(WORKER_SPEC, argv);
  const values: Values = {};
  for (const name of FLAG_NAMES) {
    const value = parsed[new Option(`--${name}`).attributeName()];
    if (value !== undefined) values[name] = value as string | boolean | string[];
  }
  const context: Context = { values, positionals: [verb!, ...operands], output, io, account: (values.account as string | undefined) ?? DEFAULT_ACCOUNT_ID };
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

