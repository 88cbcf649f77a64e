/**
 * Trusted networks (Postfix's mynetworks): clients that are part of this installation — the
 * host itself by default. They are not rate-limited and their mail is authenticated and marked
 * but never refused for failing SPF/DKIM/DMARC, so `mailroute send` works on a machine with no
 * outside DNS. Production MX traffic never comes from here.
 */
import { BlockList, isIP } from "node:net";

export type NetworkMatcher = (ip: string) => boolean;

export function createNetworkMatcher(networks: readonly string[]): NetworkMatcher {
  const list = new BlockList();
  for (const network of networks) {
    const [address = "", prefixText] = network.split("/");
    const family = isIP(address);
    const prefix = prefixText === undefined ? (family === 6 ? 128 : 32) : Number(prefixText);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new Error(`network "${network}" is not an address or CIDR prefix (e.g. 192.0.2.0/24, ::1/128)`);
    }
    list.addSubnet(address, prefix, family === 6 ? "ipv6" : "ipv4");
  }
  return function isTrusted(ip: string): boolean {
    // IPv4-mapped IPv6 (::ffff:192.0.2.1) is how a dual-stack listener reports IPv4 clients.
    const plain = ip.startsWith("::ffff:") && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 6 ? "ipv6" : "ipv4");
  };
}
