/**
 * Reads a few header fields (RFC 5322 §2.2) from the start of a message, for fingerprints and
 * the activity log. Hand-written on purpose: a full MIME parser would walk the whole 25 MiB
 * message to give us two fields; this looks only at the header block, unfolds continuation
 * lines (§2.2.3) and never throws on malformed input.
 */

export interface HeaderFields {
  messageId: string | null;
  subject: string | null;
  /** Number of header lines seen (for sanity checks). */
  count: number;
}

export function readHeaderFields(head: Buffer): HeaderFields {
  const text = head.toString("utf8");
  const end = text.search(/\r?\n\r?\n/);
  const block = end >= 0 ? text.slice(0, end) : text;
  const fields = new Map<string, string>();
  let count = 0;
  let current: { name: string; value: string } | null = null;
  const flush = () => {
    if (current !== null && !fields.has(current.name)) fields.set(current.name, current.value.trim());
  };
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && current !== null) {
      current.value += ` ${line.trim()}`;
      continue;
    }
    flush();
    const colon = line.indexOf(":");
    current = colon > 0 ? { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) } : null;
    if (current !== null) count++;
  }
  flush();
  return { messageId: fields.get("message-id") ?? null, subject: fields.get("subject") ?? null, count };
}
