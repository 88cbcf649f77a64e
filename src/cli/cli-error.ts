/**
 * CliError: what went wrong and what to do about it, with the exit code scripts can rely on
 * (2 for a usage mistake, 1 for anything else).
 */
export class CliError extends Error {
  readonly hint: string | null;
  readonly exitCode: number;

  constructor(message: string, options: { hint?: string; exitCode?: number } = {}) {
    super(message);
    this.name = "CliError";
    this.hint = options.hint ?? null;
    this.exitCode = options.exitCode ?? 1;
  }
}

export function usageError(message: string, usage: string): CliError {
  return new CliError(message, { hint: `usage: ${usage}`, exitCode: 2 });
}
