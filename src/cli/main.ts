/**
 * The `mailroute` command. Dispatches to one module per command family; turns every error
 * into a message that says what was wrong and what to do, with a non-zero exit code.
 */
import { ValidationError } from "../core/validation-error.ts";
import { CliError } from "./cli-error.ts";
import { activityCommand, addressCommand, catchAllCommand, domainCommand, routeCommand, ruleCommand, type Output } from "./config-commands.ts";
import { accountCommand, auditCommand, tokenCommand } from "./account-commands.ts";
import { doctorCommand } from "./doctor-command.ts";
import { sendCommand } from "./send-command.ts";
import { sinkCommand } from "./sink-command.ts";
import { workerCommand } from "./worker-command.ts";
import { startCommand, startUsage } from "./start-command.ts";

const COMMANDS: Record<string, (argv: string[], output: Output) => Promise<void>> = {
  start: startCommand,
  domain: domainCommand,
  address: addressCommand,
  rule: ruleCommand,
  "catch-all": catchAllCommand,
  route: routeCommand,
  send: sendCommand,
  activity: activityCommand,
  "dev-sink": sinkCommand,
  doctor: doctorCommand,
  worker: (argv, output) => workerCommand(argv, output),
  account: accountCommand,
  token: tokenCommand,
  audit: auditCommand,
};

const HELP = `mailroute — self-hosted email routing

usage: mailroute <command> [options]     (every configuration command takes --data-dir, --account and --json)

  start                      run the MX (SMTP) service            mailroute start --help
  domain add|list|remove|enable|disable|set   the domains routed here
  address add|list|verify|remove              destination addresses (must be verified)
  rule add|list|remove|enable|disable         custom address rules
  catch-all set|show                          what happens to unknown addresses
  doctor <domain>            check the domain's DNS records and print exactly what to publish
  worker deploy|list|remove|secret|kv|tail   Email Workers (Cloudflare-compatible scripts)
  account add|list|rename|remove             accounts (tenants) of this installation
  token create|list|revoke|permissions       API tokens of an account (value shown once)
  audit                      who changed what, when (per account)
  route <address>            explain where mail for an address would go, without sending
  send --to <address>        send a test message through a running server
  activity                   recent messages and what happened to them
  dev-sink                   a local catch-everything mailbox for trying mailroute out
`;

export async function main(argv: string[], output: Output = { out: (line) => console.log(line) }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    output.out(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "start" && (rest.includes("--help") || rest.includes("-h"))) {
    output.out(startUsage());
    return 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    console.error(`mailroute: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  try {
    await run(rest, output);
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      console.error(`mailroute ${command}: ${error.message}`);
      if (error.hint !== null) console.error(error.hint);
      return error.exitCode;
    }
    if (error instanceof ValidationError) {
      console.error(`mailroute ${command}: ${error.message}`);
      return 1;
    }
    console.error(`mailroute ${command}: unexpected error: ${(error as Error).stack ?? String(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
