/**
 * The body of one signing thread (signing-pool.ts): DKIM signatures and ARC seals made off
 * the SMTP thread, so RSA signing (the largest CPU cost per forwarded message) runs on another
 * core while the SMTP thread keeps reading and relaying.
 *
 * Promises: each request arrives with its own MessagePort carrying the message
 * (port-stream.ts) and gets exactly one answer on that port — the SignedHeaders, or
 * `{ error }` — after which the port is closed. It signs with the same code as the SMTP
 * thread would (createMessageSigner), with the keys the main thread's DkimKeyStore holds,
 * asked for over `keyPort` (signing-keys-remote.ts) and parsed once per thread.
 */
// first: mailauth's signer must load after the KeyObject wrap (mailauth-key-objects.ts)
import { keyObjectsAccepted } from "./mailauth-key-objects.ts";
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { remoteKeys } from "./signing-keys-remote.ts";
import { createMessageSigner, type SignRequest } from "./message-signer.ts";
import { receiveFromPort } from "./port-stream.ts";

export interface SigningWorkerData {
  /** Key requests to the main thread (transferred with the workerData). */
  keyPort: MessagePort;
  hostname: string;
}

export interface SigningJob {
  port: MessagePort;
  routingDomain: string;
  arc: SignRequest["arc"];
  authenticationResults: string | null;
}

if (parentPort === null) throw new Error("signing-worker.ts runs as a worker thread (signing-pool.ts starts it)");
const settings = workerData as SigningWorkerData;
const sign = createMessageSigner({
  keys: remoteKeys(settings.keyPort),
  hostname: settings.hostname,
});
// decided once, before the first job
await keyObjectsAccepted();

parentPort.on("message", (job: SigningJob) => {
  const { port } = job;
  sign({ message: receiveFromPort(port), routingDomain: job.routingDomain, arc: job.arc, authenticationResults: job.authenticationResults }).then(
    (signed) => {
      const headers = new Uint8Array(signed.headers);
      port.postMessage({ result: { ...signed, headers } }, [headers.buffer]);
      port.close();
    },
    (error: unknown) => {
      port.postMessage({ error: (error as Error).message ?? String(error) });
      port.close();
    },
  );
});
parentPort.postMessage("ready");
