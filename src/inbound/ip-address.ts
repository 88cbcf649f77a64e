/**
 * A client IP address in the forms the abuse defences need: its 4 or 16 bytes, the
 * reversed-label form a DNS block list is queried with, and the network a limit counts it in.
 *
 * Promises:
 * - an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack listener reports for
 *   an IPv4 peer) is the IPv4 address: one client must not get two keys, two cache entries
 *   or two DNSBL names depending on the socket it reached;
 * - anything that is not an IP address (a hostname, an XCLIENT "[UNAVAILABLE]") is null,
 *   never a guess;
 * - `reversedLabels` is RFC 5782 §2.1 (IPv4, octets reversed) and §2.4 (IPv6, 32 nibbles
 *   reversed), the same order as in-addr.arpa / ip6.arpa.
 */
import { isIPv4, isIPv6 } from "node:net";

export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  /** Dotted quad for IPv4, RFC 5952 canonical text for IPv6 (`2001:db8::1`): one spelling per address. */
  readonly text: string;
}

export function parseIpAddress(input: string): IpAddress | null {
  // a link-local peer carries its zone ("fe80::1%eth0"); the zone is not part of the address
  const address = input.trim().replace(/%.*$/, "");
  if (isIPv4(address)) return ipv4(Uint8Array.from(address.split(".").map(Number)));
  if (!isIPv6(address)) return null;
  const bytes = ipv6Bytes(address);
  if (bytes === null) return null;
  // RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is an IPv4 node seen through an IPv6 socket
  if (bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return ipv4(bytes.slice(12));
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  return Object.freeze({ family: 6, bytes, text: ipv6Text(groups) });
}

/** RFC 5782 §2.1 / §2.4: the labels to put in front of a DNSBL zone. */
export function reversedLabels(ip: IpAddress): string {
  if (ip.family === 4) return [...ip.bytes].reverse().join(".");
  const nibbles: string[] = [];
  for (const byte of ip.bytes) nibbles.push((byte >> 4).toString(16), (byte & 0xf).toString(16));
  return nibbles.reverse().join(".");
}

/**
 * The network a client is counted as: the address itself for IPv4, its /prefixBits for IPv6
 * (`2001:db8:1:2::/64`). One IPv6 subscriber is normally given a whole /64 (RFC 6177), so
 * counting single IPv6 addresses would let one host rotate through 2^64 "clients".
 */
export function networkKey(ip: IpAddress, ipv6PrefixBits: number): string {
  if (ip.family === 4) return ip.text;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) {
    const bits = Math.min(16, Math.max(0, ipv6PrefixBits - i * 16));
    const mask = (0xffff << (16 - bits)) & 0xffff;
    groups.push(((ip.bytes[i * 2]! << 8) | ip.bytes[i * 2 + 1]!) & mask);
  }
  return `${ipv6Text(groups)}/${ipv6PrefixBits}`;
}

/** RFC 5952 §4: lower-case, no leading zeros, the longest run (first on a tie) of 2+ zero groups as "::". */
function ipv6Text(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

function ipv4(bytes: Uint8Array): IpAddress {
  return Object.freeze({ family: 4, bytes, text: [...bytes].join(".") });
}

/** Expands a text that already passed `isIPv6` (so "::" appears at most once) into 16 bytes. */
function ipv6Bytes(address: string): Uint8Array | null {
  let text = address.toLowerCase();
  const tail: number[] = [];
  // RFC 4291 §2.2 form 3: the last 32 bits may be written as a dotted quad
  const lastColon = text.lastIndexOf(":");
  const maybeV4 = text.slice(lastColon + 1);
  if (maybeV4.includes(".")) {
    if (!isIPv4(maybeV4)) return null;
    const octets = maybeV4.split(".").map(Number);
    tail.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
    text = text.slice(0, lastColon + 1);
    // "::ffff:" leaves a trailing single colon that belongs to the dotted part; "::" stays
    if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
  }
  const [headText = "", restText] = text.split("::");
  const parse = (part: string): number[] => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
  const head = parse(headText);
  const rest = restText === undefined ? [] : parse(restText);
  const missing = 8 - head.length - rest.length - tail.length;
  if (missing < 0 || (restText === undefined && missing !== 0)) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...rest, ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((group, index) => {
    bytes[index * 2] = group >> 8;
    bytes[index * 2 + 1] = group & 0xff;
  });
  return bytes;
}
