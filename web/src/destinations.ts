/**
 * Forward destinations in mailroute's notation: each list entry is one delivery; within an
 * entry, `a@x:b@y` is a failover chain (b@y is tried only if a@x fails). These pure functions
 * turn that notation into chains the editor and the rules table can show, and back, so
 * `a@x:b@y, c@z` reads as "to a@x (else b@y), and to c@z".
 */

export type Chain = string[];

export function parseDestinations(values: readonly string[]): Chain[] {
  return values.map((entry) => entry.split(":").map((address) => address.trim()).filter((address) => address !== "")).filter((chain) => chain.length > 0);
}

export function formatDestinations(chains: readonly Chain[]): string[] {
  return chains.map((chain) => chain.map((address) => address.trim()).filter((address) => address !== "").join(":")).filter((entry) => entry !== "");
}

/** One line a person can read: "a@x (backup b@y) + c@z". */
export function describeChains(chains: readonly Chain[]): string {
  return chains.map(([primary, ...backups]) => (backups.length === 0 ? primary : `${primary} (backup ${backups.join(", then ")})`)).join(" + ");
}

/** Every address a set of actions forwards to, primaries and backups alike. */
export function addressesIn(actions: readonly { type: string; value?: string[] }[]): string[] {
  return actions.filter((action) => action.type === "forward").flatMap((action) => parseDestinations(action.value ?? []).flat());
}

export function looksLikeAddress(value: string): boolean {
  return /^[^\s@:,]+@[^\s@:,]+\.[^\s@:,]+$/.test(value.trim());
}

/** Problems with an edited set of chains, one message each; empty when it can be saved. */
export function validateChains(chains: readonly Chain[]): string[] {
  const problems: string[] = [];
  const filled = chains.map((chain) => chain.filter((address) => address.trim() !== "")).filter((chain) => chain.length > 0);
  if (filled.length === 0) problems.push("Add at least one destination.");
  for (const address of filled.flat()) if (!looksLikeAddress(address)) problems.push(`"${address}" is not an email address.`);
  return problems;
}
