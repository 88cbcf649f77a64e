/**
 * One of several processes using a fresh DKIM key directory at the same moment, as two
 * mailroute instances sharing a data directory do on their first message for a domain.
 * argv: <dir> <domain>. Prints "ready", waits for a line on stdin (so the parent can release
 * every process at once), then prints the domain's RSA key record as JSON.
 */
import { once } from "node:events";
import { DkimKeyStore } from "../../src/delivery/dkim-keys.ts";

const [dir = "", domain = ""] = process.argv.slice(2);
const store = new DkimKeyStore({ dir });
process.stdout.write("ready\n");
await once(process.stdin, "data");
process.stdin.pause();
const keys = await store.keysFor(domain);
process.stdout.write(`${JSON.stringify(keys.rsa.dnsValue)}\n`);
