/**
 * How configuration commands answer: a human summary, or with --json the result as JSON;
 * aligned tables; a required operand or a usage error naming it.
 */
import { usageError } from "./cli-error.ts";
import type { FlagSpec } from "./command-spec.ts";

export interface Output {
  out(line: string): void;
}

export function emit(output: Output, values: { json?: boolean }, json: unknown, human: string[]): void {
  if (values.json) output.out(JSON.stringify(json, null, 2));
  else for (const line of human) output.out(line);
}

export function table(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd());
}

export function need(positionals: readonly (string | undefined)[], index: number, what: string, usage: string): string {
  const value = positionals[index];
  if (value === undefined || value === "") throw usageError(`missing ${what}`, usage);
  return value;
}

// ── domain ──────────────────────────────────────────────────────────────────

// each switch: its flag, commander's value name (--no-<flag> sets the same one false), the field

export function yes(value: boolean): string {
  return value ? "yes" : "no";
}

export function onOff(value: boolean): string {
  return value ? "on" : "off";
}

/** The flag that skips a confirmation (required when not on a terminal). */
export const YES: FlagSpec = ["-y, --yes", "do not ask (required when not on a terminal)"];
