/**
 * Asks before a destructive removal. It lists what will be affected first; on a terminal it
 * asks y/N, anywhere else (a script, a pipe) it refuses unless --yes was given, so nothing is
 * deleted by a command that nobody read.
 *
 * Promises: returns only when the removal may go ahead; otherwise throws a CliError (exit 2
 * without a terminal and without --yes, exit 1 when the operator answered no) and nothing
 * was changed.
 */
import { createInterface } from "node:readline/promises";
import { CliError } from "./cli-error.ts";
import type { Output } from "./command-output.ts";

export interface RemovalPrompt {
  /** What will happen, e.g. `remove domain example.com`. */
  action: string;
  /** One line per thing affected besides the removed object itself. */
  affected: string[];
  /** --yes */
  yes: boolean;
  /** The command to repeat with --yes, for the refusal's hint. */
  command: string;
}

export async function confirmRemoval(prompt: RemovalPrompt, output: Output): Promise<void> {
  if (prompt.yes) return;
  const lines = [`${prompt.action} will also affect:`, ...prompt.affected.map((line) => `  - ${line}`)];
  if (!process.stdin.isTTY) {
    throw new CliError(`${lines.join("\n")}\nrefusing without confirmation: this is not an interactive terminal`, { exitCode: 2, hint: `to go ahead, run: ${prompt.command} --yes` });
  }
  for (const line of lines) output.out(line);
  const readline = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await readline.question(`${prompt.action}? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError("not confirmed: nothing was changed");
  } finally {
    readline.close();
  }
}
