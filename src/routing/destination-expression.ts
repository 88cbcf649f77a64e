/**
 * Destination expressions, as the multi-destination failover worker (reference/) writes them:
 * `,` separates primaries that all receive the message; `:` inside a primary lists backups
 * tried in order until one accepts. Whitespace is ignored; a destination repeated anywhere in
 * the expression is kept only at its first position (delivering twice would duplicate mail).
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
  const seen = new Set<string>();
  const chains: string[][] = [];
  for (const primary of text.split(",")) {
    if (primary === "") continue;
    const chain: string[] = [];
    for (const member of primary.split(":")) {
      if (member === "") throw new DestinationExpressionError(primary, "has an empty backup (\"::\" or a trailing \":\")");
      const parsed = parseDestinationAddress(member);
      if (parsed === null) throw new DestinationExpressionError(member, "is not an email address");
      if (seen.has(parsed.key)) continue;
      seen.add(parsed.key);
      chain.push(`${parsed.local}@${parsed.domain}`);
    }
    if (chain.length > 0) chains.push(chain);
  }
  if (chains.length === 0) throw new DestinationExpressionError(text, "names no destination");
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
