/**
 * The body of the short-lived thread that makes a dev certificate (tls-credentials.ts,
 * createDevCredentials): selfsigned and the @peculiar/x509 modules it brings are loaded here and
 * go away with the thread, instead of staying in the SMTP thread's heap for the life of a service
 * that made one certificate at its first start (~10–19 MiB of RSS; issue 11).
 *
 * Promises: posts exactly one message, `{ cert, key }` (PEM) or `{ error }`, then ends.
 */
import { parentPort, workerData } from "node:worker_threads";

export interface DevCertificateRequest {
  hostname: string;
  notBefore: Date;
  notAfter: Date;
}

export type DevCertificateAnswer = { cert: string; key: string } | { error: string };

if (parentPort === null) throw new Error("dev-certificate-thread.ts runs as a worker thread (tls-credentials.ts starts it)");
const port = parentPort;
const { hostname, notBefore, notAfter } = workerData as DevCertificateRequest;
try {
  const { generate } = await import("selfsigned");
  const pems = await generate([{ name: "commonName", value: hostname }], {
    // RSA: the one key type every SMTP client that can do TLS at all can use
    keyType: "rsa",
    keySize: 2048,
    algorithm: "sha256",
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: hostname }] },
    ],
  });
  port.postMessage({ cert: pems.cert, key: pems.private } satisfies DevCertificateAnswer);
} catch (error) {
  port.postMessage({ error: (error as Error).message ?? String(error) } satisfies DevCertificateAnswer);
}
