/**
 * Destination expressions, as the multi-destination failover worker (reference/) writes them:
 * `,` separates primaries that all receive the message; `:` inside a primary lists backups
 * tried in order until one accepts. Whitespace is ignored. Each destination appears once
 * (delivering twice would duplicate mail) without changing who is promised the message: an
 * address that is a primary anywhere stays a primary and is dropped where it is a backup; a
 * primary written twice keeps one chain holding both lists of backups; a backup named by two
 * chains stays in the first. A backup is never promoted to a primary.
 *
 * Parsing happens when a rule is saved, so a typo is refused to the operator and never
 * discovered by a sender. Pure.
 */
import { parseDestinationAddress } from "./email-address.ts";

/** Each inner array is one primary: its first member, then backups in order. */
export type DestinationChains = readonly (readonly string[])[];

export class DestinationExpressionError extends Error {
  readonly destination: string;
  constructor(destination: string, reason: string) {
    super(`destination "${destination}" ${reason}`);
    this.name = "DestinationExpressionError";
    this.destination = destination;
  }
}

/**
 * Parse one expression or a list of them (Cloudflare's forward action holds a list; each
 * element may itself be an expression). Returns normalised addresses: domain in IDNA
 * lower-case, local part as typed.
 */
export function parseDestinationExpression(input: string | readonly string[]): DestinationChains {
  const text = (typeof input === "string" ? [input] : input).join(",").replace(/\s+/g, "");
  const written: { key: string; address: string }[][] = [];
  for (const primary of text.split(",")) {
    if (primary === "") continue;
    written.push(
      primary.split(":").map((member) => {
        if (member === "") throw new DestinationExpressionError(primary, "has an empty backup (\"::\" or a trailing \":\")");
        const parsed = parseDestinationAddress(member);
        if (parsed === null) throw new DestinationExpressionError(member, "is not an email address");
        return { key: parsed.key, address: `${parsed.local}@${parsed.domain}` };
      }),
    );
  }
  if (written.length === 0) throw new DestinationExpressionError(text, "names no destination");
  // De-duplicate by role, not by position: "a:b, b:c" must not make c (b's backup) a primary.
  const primaries = new Set(written.map((chain) => chain[0]!.key));
  const chainOf = new Map<string, string[]>();
  const seen = new Set<string>();
  const chains: string[][] = [];
  for (const [first, ...backups] of written) {
    let chain = chainOf.get(first!.key);
    if (chain === undefined) {
      chain = [first!.address];
      chainOf.set(first!.key, chain);
      chains.push(chain);
    }
    for (const backup of backups) {
      if (primaries.has(backup.key) || seen.has(backup.key)) continue;
      seen.add(backup.key);
      chain.push(backup.address);
    }
  }
  return chains;
}

/** Render chains back to the canonical expression form. */
export function formatDestinationChains(chains: DestinationChains): string {
  return chains.map((chain) => chain.join(":")).join(", ");
}

/** Every address in the chains, in order. */
export function allDestinations(chains: DestinationChains): string[] {
  return chains.flat();
}
