/**
 * Reads the header section (RFC 5322 §2.2) from the first bytes of a message, keeping what the
 * spam scorer asks about that delivery/header-block.ts throws away: every occurrence of a field
 * (two From fields matter), and the lines that are not header fields at all.
 *
 * Promises: never throws on any input; looks only at the bytes it is given (spool.head()),
 * up to the first empty line; field names lower-cased, values unfolded (§2.2.3) and trimmed.
 */

export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

export interface HeaderSection {
  readonly fields: readonly HeaderField[];
  /** Lines in the header section that are neither a field nor a continuation of one. */
  readonly malformedLines: number;
  /** False when no empty line ended the section within the bytes given. */
  readonly complete: boolean;
}

// RFC 5322 §3.6.8: field-name = 1*ftext (printable US-ASCII but ":"); §4.5.8 (obsolete syntax)
// allows whitespace before the colon, which real mailers still send
const FIELD_LINE = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)$/s;

export function readHeaderSection(head: Buffer): HeaderSection {
  const text = head.toString("utf8");
  const end = /\r?\n\r?\n/.exec(text);
  // a message that starts with an empty line has an empty header section (RFC 5322 §2.1)
  const startsEmpty = /^\r?\n/.test(text);
  const block = startsEmpty ? "" : end ? text.slice(0, end.index) : text;
  const fields: { name: string; value: string }[] = [];
  let malformedLines = 0;
  let current: { name: string; value: string } | null = null;
  for (const line of block === "" ? [] : block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      // a continuation with no field before it belongs to nothing
      if (current === null) malformedLines++;
      else current.value += line;
      continue;
    }
    const match = FIELD_LINE.exec(line);
    if (match === null) {
      // e.g. an mbox "From " separator, a line without a colon, or body text without the empty line
      malformedLines++;
      current = null;
      continue;
    }
    current = { name: (match[1] ?? "").toLowerCase(), value: match[2] ?? "" };
    fields.push(current);
  }
  return {
    fields: fields.map((field) => Object.freeze({ name: field.name, value: field.value.replace(/[ \t]+/g, " ").trim() })),
    malformedLines,
    complete: startsEmpty || end !== null,
  };
}
