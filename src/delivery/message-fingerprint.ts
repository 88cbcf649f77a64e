/**
 * The message fingerprint keys the delivery ledger (DESIGN §4): Message-ID + envelope + body
 * hash. A sender's retry of the same message produces the same fingerprint; a different
 * message, or the same message to a different envelope, does not.
 */
import { createHash } from "node:crypto";

export function messageFingerprint(input: { messageId: string | null; mailFrom: string; recipients: readonly string[]; contentSha256: string }): string {
  const hash = createHash("sha256");
  hash.update(`mid:${input.messageId ?? ""}\n`);
  hash.update(`from:${input.mailFrom.toLowerCase()}\n`);
  for (const recipient of [...input.recipients].map((r) => r.toLowerCase()).sort()) hash.update(`rcpt:${recipient}\n`);
  hash.update(`body:${input.contentSha256}\n`);
  return hash.digest("hex");
}
