/**
 * The header fields of a message as a DKIM or ARC signer reads them: split into fields, put in
 * relaxed form (RFC 6376 §3.4.2), and picked for a signature's h= list (§5.4.2).
 *
 * Promises:
 * - `parseHeaderFields` splits a header block where mailauth 7.1's parser (what verifies our
 *   mail in our own tests, and what signed it before issue 11) splits it, because a signature
 *   covers exactly the bytes of the fields it names: a line opens a field when it reads as
 *   `name:` (a fold may sit between the name and the colon), any other line continues the field
 *   above it, even one not starting with whitespace; LF and CRLF line ends alike, each fold
 *   kept as CRLF; a lone CR is content. Linear in the block (mailauth's was quadratic);
 * - `relaxedField` is the relaxed canonical form of one field, without its CRLF;
 * - `fieldsToSign` lists every field of the named kinds, bottom-up, as mailauth's signer does
 *   (so a repeated field is signed as many times as it occurs, not oversigned).
 * Strings here are 'latin1' views of the bytes: one character per byte, so nothing is decoded.
 */

export interface HeaderField {
  /** The field name in ASCII lower case, null for a line with no name before a colon. */
  key: string | null;
  /** The field name as written (folds and surrounding WSP removed). */
  name: string | null;
  /** The whole field, folds as CRLF, no final CRLF; one character per byte. */
  line: string;
}

// RFC 5322 §3.6.8: field-name = 1*ftext (printable ASCII but ":"); WSP or a fold may precede the colon (§4.5.8)
const FIELD_START = /^[\x21-\x39\x3b-\x7e]+[ \t\r\n]*:/;

export function parseHeaderFields(block: Buffer): HeaderField[] {
  const lines = block.toString("latin1").replace(/[\r\n]+$/, "").split(/\r?\n/);
  if (lines.length === 1 && lines[0] === "") return [];
  // bottom-up, because whether a line opens a field can depend on the line below it: a name
  // folded before its colon reads as a field only together with that next line. The first
  // line always opens one, whatever it looks like
  const opens: boolean[] = new Array<boolean>(lines.length).fill(false);
  for (let i = lines.length - 1; i > 0; i--) {
    const nextContinues = i + 1 < lines.length && !opens[i + 1];
    opens[i] = FIELD_START.test(nextContinues ? `${lines[i]}\r\n${lines[i + 1]}` : lines[i]!);
  }
  const fields: HeaderField[] = [];
  for (let start = 0; start < lines.length; ) {
    let end = start + 1;
    while (end < lines.length && !opens[end]) end++;
    fields.push(field(lines.slice(start, end).join("\r\n")));
    start = end;
  }
  return fields;
}

function field(line: string): HeaderField {
  const before = /^[^:]+/.exec(line);
  if (before === null) return { key: null, name: null, line };
  const name = before[0].replace(/\r?\n/g, "").replace(/^[ \t]+|[ \t]+$/g, "");
  return { key: lowerAscii(name), name, line };
}

/** RFC 6376 §3.4.2: unfold, name in lower case without WSP around the colon, WSP runs as one SP, none at the ends. */
export function relaxedField(line: string): string {
  return line
    .replace(/\r?\n/g, "")
    .replace(/^([^:]*):[ \t]*/, (_match, name: string) => `${lowerAscii(name).replace(/^[ \t]+|[ \t]+$/g, "")}:`)
    .replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "");
}

/** The fields to sign for a list of names: every one present, from the bottom of the block up. */
export function fieldsToSign(fields: readonly HeaderField[], names: ReadonlySet<string>): HeaderField[] {
  const chosen: HeaderField[] = [];
  for (let i = fields.length - 1; i >= 0; i--) {
    const candidate = fields[i]!;
    if (candidate.key !== null && names.has(candidate.key)) chosen.push(candidate);
  }
  return chosen;
}

/** A set of field names for fieldsToSign, in the form `key` has. */
export function fieldNameSet(names: readonly string[]): ReadonlySet<string> {
  return new Set(names.map((name) => lowerAscii(name.trim())).filter((name) => name !== ""));
}

// RFC 6376 §3.4.2 lower-cases field names as ASCII: toLowerCase() would also map the latin1
// letters 0xC0-0xDE, changing the bytes of a UTF-8 name
export function lowerAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}
