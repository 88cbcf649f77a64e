import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TOKEN_SPEC } from "../../src/cli/account-commands.ts";
import { CliError } from "../../src/cli/cli-error.ts";
import { parseCommand } from "../../src/cli/command-spec.ts";
import { ACTIVITY_SPEC } from "../../src/cli/activity-command.ts";
import { DOMAIN_SPEC } from "../../src/cli/domain-commands.ts";
import { RULE_SPEC } from "../../src/cli/rule-commands.ts";

function usageFailure(run: () => unknown): CliError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof CliError, String(error));
    return error;
  }
  assert.fail("parsed without a usage error");
}

describe("commands parse their argv with commander, against the spec their help shows", () => {
  it("hands the command typed values: camelCased names, switches, repeatable lists, defaults", () => {
    const rule = parseCommand<Record<string, unknown>>(RULE_SPEC, ["add", "hello@example.com", "--worker", "triage", "--allow-undeployed", "--data-dir", "/srv/data"]);
    assert.deepEqual([rule.verb, rule.operands], ["add", ["hello@example.com"]]);
    assert.deepEqual(rule.values, { worker: "triage", allowUndeployed: true, dataDir: "/srv/data" });
    assert.equal(rule.usage, "mailroute rule add <address> [options]");

    const token = parseCommand<{ permission: string[]; allowIp: string[] }>(TOKEN_SPEC, ["create", "--permission", "A", "--allow-ip", "10.0.0.0/8", "--permission", "B"]);
    assert.deepEqual(token.values.permission, ["A", "B"]);
    assert.deepEqual(token.values.allowIp, ["10.0.0.0/8"]);

    assert.equal(parseCommand<{ limit: string }>(ACTIVITY_SPEC, []).values.limit, "20");
    assert.equal(parseCommand<{ limit: string }>(ACTIVITY_SPEC, ["--limit", "5"]).values.limit, "5");
    assert.deepEqual(parseCommand<Record<string, unknown>>(DOMAIN_SPEC, ["set", "example.com", "--no-subaddressing", "--enforce-dmarc"]).values, { subaddressing: false, enforceDmarc: true });
  });

  it("still takes a family's flags before its subcommand, as the node:util parsers did", () => {
    const parsed = parseCommand<Record<string, unknown>>(RULE_SPEC, ["--data-dir", "/srv/data", "--json", "list", "example.com"]);
    assert.deepEqual([parsed.verb, parsed.operands, parsed.values], ["list", ["example.com"], { dataDir: "/srv/data", json: true }]);
  });

  it("turns every parse mistake into a usage error (exit 2) with commander's words and the usage line", () => {
    const unknown = usageFailure(() => parseCommand(RULE_SPEC, ["add", "x@example.com", "--fowrard", "a@b.example"]));
    assert.equal(unknown.exitCode, 2);
    assert.equal(unknown.message, "unknown option '--fowrard'\n(Did you mean --forward?)");
    assert.equal(unknown.hint, "usage: mailroute rule add <address> [options]");
    // a flag of another subcommand is not this one's
    assert.match(usageFailure(() => parseCommand(RULE_SPEC, ["add", "x@example.com", "--drop", "--enable"])).message, /^unknown option '--enable'/);
    assert.equal(usageFailure(() => parseCommand(RULE_SPEC, ["remove"])).message, "missing required argument 'address'");
    assert.match(usageFailure(() => parseCommand(DOMAIN_SPEC, ["list", "extra"])).message, /^too many arguments for 'list'/);
    assert.equal(usageFailure(() => parseCommand(DOMAIN_SPEC, [])).message, "missing subcommand");
    assert.equal(usageFailure(() => parseCommand(ACTIVITY_SPEC, ["--limit"])).message, "option '--limit <n>' argument missing");
  });
});
