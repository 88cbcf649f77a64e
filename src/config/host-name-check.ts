/**
 * Whether our host name can stand in public DNS as an MX target and EHLO name (RFC 5321 §2.3.5:
 * a fully qualified domain name; §4.1.1.1: the EHLO name should be one). The machine's short
 * name (`vm`, `ip-10-0-0-5`) is what `--hostname` falls back to, and a record like `MX 10 vm.`
 * points senders nowhere.
 *
 * Promises: pure; returns why a name is not usable (null when it is), in words an operator can
 * act on. Reserved test names (`.test`, `.example`) count as qualified: they are how the test
 * suite and the walkthrough name hosts.
 */

// names that only ever mean "this machine" or "this LAN" (RFC 6761 §6.3, RFC 6762, RFC 8375)
const LOCAL_ONLY = /(^|\.)(localhost|localdomain|local|lan|home\.arpa|internal)$/;

export function hostnameProblem(hostname: string): string | null {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (/^[\d.]+$/.test(name) || name.includes(":")) return `"${hostname}" is an address, not a host name`;
  const labels = name.split(".");
  if (labels.length < 2) return `"${hostname}" is not a fully qualified domain name (it has no domain part)`;
  // RFC 3696 §2: a top-level domain is never all-numeric
  if (/^\d+$/.test(labels.at(-1)!)) return `"${hostname}" does not end in a top-level domain`;
  if (LOCAL_ONLY.test(name)) return `"${hostname}" is a local-only name that public DNS does not resolve`;
  return null;
}
