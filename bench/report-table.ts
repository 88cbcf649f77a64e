/**
 * Plain-text tables for the benchmark report, and the unit formatting they use. Pure.
 *
 * Promises: columns line up in a monospace terminal (cells are padded, numbers right-aligned);
 * a missing figure prints as "—", never as 0.
 */

export type Cell = string | number | null;

export interface Column {
  title: string;
  align?: "left" | "right";
}

export function formatTable(title: string, columns: readonly Column[], rows: readonly (readonly Cell[])[], notes: readonly string[] = []): string {
  const text = rows.map((row) => columns.map((_, index) => cellText(row[index] ?? null)));
  const widths = columns.map((column, index) => Math.max(column.title.length, ...text.map((row) => row[index]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, index) => ((columns[index]!.align ?? "right") === "left" ? cell.padEnd(widths[index]!) : cell.padStart(widths[index]!)))
      .join("  ")
      .trimEnd();
  return [
    title,
    "=".repeat(title.length),
    line(columns.map((column) => column.title)),
    line(widths.map((width) => "-".repeat(width))),
    ...text.map(line),
    ...notes.map((note) => `  ${note}`),
    "",
  ].join("\n");
}

function cellText(cell: Cell): string {
  if (cell === null) return "—";
  if (typeof cell === "string") return cell;
  return fixed(cell);
}

/** Integers as they are; other figures with about three significant digits: 0.123, 12.3, 1,234 (never exponent notation). */
export function fixed(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  // counts stay counts: "60", not "60.0"
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toLocaleString("en-US");
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(magnitude >= 1 || magnitude === 0 ? 2 : 3);
}

export function mib(bytes: number | null): Cell {
  return bytes === null ? null : `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** A signed difference in MiB, e.g. "+12.3 MiB". */
export function mibDelta(from: number | null, to: number | null): Cell {
  if (from === null || to === null) return null;
  const delta = (to - from) / 1048576;
  return `${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(1)} MiB`;
}

export function ms(value: number | null): Cell {
  return value === null ? null : fixed(value);
}

/** A signed millisecond difference, e.g. "+1.23". */
export function msDelta(value: number | null): Cell {
  if (value === null) return null;
  return `${value >= 0 ? "+" : "−"}${fixed(Math.abs(value))}`;
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(bytes % 1048576 === 0 ? 0 : 2)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(bytes % 1024 === 0 ? 0 : 1)} KiB`;
  return `${bytes} B`;
}
