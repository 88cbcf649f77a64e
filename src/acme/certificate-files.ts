/**
 * Where ACME keeps the certificate for one host name: `<data-dir>/acme/certs/<name>/`
 * (fullchain.pem, privkey.pem). Its own module so that the STARTTLS setup and `mailroute
 * doctor` can find ACME's files without loading acme-client (axios, node-forge: ~10 MB of heap
 * in a service that never orders a certificate; issue 11, RSS).
 */
import { join } from "node:path";

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

export function certificateFiles(dir: string, name: string): CertificateFiles {
  const folder = join(dir, "certs", name);
  return { certFile: join(folder, "fullchain.pem"), keyFile: join(folder, "privkey.pem") };
}
