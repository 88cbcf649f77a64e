/**
 * Parsing and normalising the addresses that routing compares.
 *
 * Promises: a domain is compared in its IDNA (ASCII) lower-case form without a trailing dot;
 * a local part is compared case-insensitively while its original spelling is kept for display.
 * Anything that smells of sender-specified routing (RFC 5321 §3.6 source routes, `%` and `!`
 * hacks, a quoted `@` in the local part, address literals) is reported as such, so the SMTP
 * layer can refuse it as a relay attempt the way Postfix does with allow_untrusted_routing=no.
 * Pure: no I/O.
 */
import { domainToASCII } from "node:url";

export interface ParsedAddress {
  /** Local part as written (quotes removed), original case. */
  local: string;
  /** IDNA ASCII, lower-case, no trailing dot. */
  domain: string;
  /** `local@domain` with the local part lower-cased: the comparison key. */
  key: string;
}

export type AddressProblem =
  | { problem: "syntax"; detail: string }
  | { problem: "routing-trick"; detail: string };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// RFC 5322 atext plus "." for dot-atom; UTF-8 allowed for SMTPUTF8 (RFC 6531).
const DOT_ATOM_LOCAL = /^[^\s"(),:;<>@[\\\]]+$/u;

/** IDNA-encode and validate a domain name; returns null when it is not a usable host name. */
export function normalizeDomain(input: string): string | null {
  let domain = input.trim();
  // A single trailing dot is the same fully-qualified name (RFC 1034 §3.1).
  if (domain.endsWith(".")) domain = domain.slice(0, -1);
  if (domain === "" || domain.length > 253) return null;
  // domainToASCII is the WHATWG URL host parser: it percent-decodes ("ex%61mple.com"), strips
  // tabs and newlines, and stops at ":", "/", "?", "#" or "\\" ("example.com/x" → example.com).
  // An ASCII character outside letters, digits, "-" and "." is therefore refused before it runs.
  if (/[^a-zA-Z0-9.\-\u0080-\uffff]/.test(domain)) return null;
  const ascii = domainToASCII(domain.toLowerCase());
  if (ascii === "") return null;
  const labels = ascii.split(".");
  if (labels.length < 1 || !labels.every((label) => LABEL.test(label))) return null;
  // An all-numeric top label is an IPv4 address to the URL parser ("2130706433" → 127.0.0.1)
  // and never a DNS name (RFC 3696 §2); literals must be bracketed (RFC 5321 §4.1.3).
  if (/^[0-9]+$/.test(labels.at(-1)!)) return null;
  return ascii;
}

function unquoteLocal(local: string): string | null {
  if (!(local.startsWith('"') && local.endsWith('"') && local.length >= 2)) return local;
  const inner = local.slice(1, -1);
  let out = "";
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i]!;
    if (ch === "\\") {
      i++;
      if (i >= inner.length) return null;
      out += inner[i];
    } else if (ch === '"') {
      return null;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Parse an envelope address (without angle brackets) for routing. */
export function parseAddress(input: string): ParsedAddress | AddressProblem {
  const raw = input.trim();
  if (raw.startsWith("@")) {
    // RFC 5321 §4.1.1.3: source routes are obsolete; accepting them is how open relays happen.
    return { problem: "routing-trick", detail: "source route" };
  }
  const at = raw.lastIndexOf("@");
  if (at <= 0 || at === raw.length - 1) return { problem: "syntax", detail: "address must be local@domain" };
  const local = unquoteLocal(raw.slice(0, at));
  if (local === null || local === "") return { problem: "syntax", detail: "malformed local part" };
  if (local.length > 64) return { problem: "syntax", detail: "local part longer than 64 octets" };
  if (/[@%!]/.test(local)) {
    // user%remote@us, remote!user@us, "user@remote"@us: sender-specified routing.
    return { problem: "routing-trick", detail: "sender-specified routing in local part" };
  }
  if (/[\u0000-\u001f\u007f]/.test(local)) return { problem: "syntax", detail: "control character in local part" };
  const domainPart = raw.slice(at + 1);
  if (domainPart.startsWith("[")) return { problem: "routing-trick", detail: "address literal" };
  const domain = normalizeDomain(domainPart);
  if (domain === null) return { problem: "syntax", detail: "invalid domain" };
  return { local, domain, key: `${local.toLowerCase()}@${domain}` };
}

export function isAddressProblem(value: ParsedAddress | AddressProblem): value is AddressProblem {
  return "problem" in value;
}

/** Strict validation for a destination address that an operator types into a rule. */
export function parseDestinationAddress(input: string): ParsedAddress | null {
  const raw = input.trim();
  const at = raw.lastIndexOf("@");
  if (at <= 0) return null;
  const local = raw.slice(0, at);
  if (!DOT_ATOM_LOCAL.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) return null;
  if (local.length > 64) return null;
  const domainPart = raw.slice(at + 1);
  if (domainPart.endsWith(".")) return null;
  const domain = normalizeDomain(domainPart);
  if (domain === null) return null;
  return { local, domain, key: `${local.toLowerCase()}@${domain}` };
}

/**
 * The address with its domain in IDNA (ASCII) form. smtp-server hands us Unicode domains;
 * SRS and the upstream MAIL FROM need the ASCII form, or every upstream would need SMTPUTF8.
 */
export function toAsciiAddress(address: string): string {
  const at = address.lastIndexOf("@");
  if (at < 0) return address;
  const ascii = domainToASCII(address.slice(at + 1));
  return ascii === "" ? address : `${address.slice(0, at)}@${ascii}`;
}

/** Split `user+detail` at the first separator (RFC 5233). */
export function splitSubaddress(local: string, separator = "+"): { base: string; detail: string | null } {
  const index = local.indexOf(separator);
  if (index <= 0) return { base: local, detail: null };
  return { base: local.slice(0, index), detail: local.slice(index + separator.length) };
}
