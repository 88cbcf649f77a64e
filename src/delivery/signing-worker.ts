/**
 * The body of one signing thread (signing-pool.ts): DKIM signatures and ARC seals made off
 * the SMTP thread, so RSA signing (the largest CPU cost per forwarded message) runs on another
 * core while the SMTP thread keeps reading and relaying.
 *
 * Promises: a large message arrives with its own MessagePort carrying it (port-stream.ts) and
 * gets exactly one answer on that port — the SignedHeaders, or `{ error }` — after which the
 * port is closed; a small one arrives whole, and a spilled one as its spool names it (read here
 * from the file, spooled-copy.ts), each with an id, and gets exactly one answer with that id on
 * the thread's own port. It signs with the same code as the SMTP
 * thread would (createMessageSigner), with the keys the main thread's DkimKeyStore holds,
 * asked for over `keyPort` (signing-keys-remote.ts) and parsed once per thread.
 */
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { remoteKeys } from "./signing-keys-remote.ts";
import { createMessageSigner, type SignedHeaders, type SignRequest } from "./message-signer.ts";
import { receiveFromPort } from "./port-stream.ts";
import type { KeyOperationSite } from "./signature-field.ts";
import { serveWrites } from "../store/sqlite-writer-service.ts";

export interface SigningWorkerData {
  /** Key requests to the main thread (transferred with the workerData). */
  keyPort: MessagePort;
  hostname: string;
  /** The store writer service this thread runs too (signing-pool.ts `hostStoreWriter`): its port (transferred) and SQLite file. */
  store?: { port: MessagePort; path: string };
}

interface JobMeta {
  routingDomain: string;
  arc: SignRequest["arc"];
  authenticationResults: string | null;
  /** Where its key operations run (signing-pool.ts decides: inline when the thread had no other job). */
  keyOperations: KeyOperationSite;
}

/**
 * A message streamed over its own port; or, with an id, carried in the job itself (small enough
 * to post whole) or named by its spool (`spooled`: the in-memory head carried, the file read here).
 */
export type SigningJob =
  | (JobMeta & { port: MessagePort })
  | (JobMeta & { id: number; message: Uint8Array })
  | (JobMeta & { id: number; spooled: { head: Uint8Array; path: string; bytes: number } });

/** The answer to a job: the signer's result (header lines transferred as bytes), or why it failed. */
export type SigningAnswer = { result: Omit<SignedHeaders, "headers"> & { headers: Uint8Array } } | { error: string };

if (parentPort === null) throw new Error("signing-worker.ts runs as a worker thread (signing-pool.ts starts it)");
const settings = workerData as SigningWorkerData;
// the store writer's statements run between signing jobs, on this thread's connection
if (settings.store !== undefined) serveWrites(settings.store.port, settings.store.path);
const sign = createMessageSigner({
  keys: remoteKeys(settings.keyPort),
  hostname: settings.hostname,
});

function answer(signing: Promise<SignedHeaders>, reply: (answer: SigningAnswer, transfer?: ArrayBuffer[]) => void): void {
  signing.then(
    (signed) => {
      const headers = new Uint8Array(signed.headers);
      reply({ result: { ...signed, headers } }, [headers.buffer]);
    },
    (error: unknown) => reply({ error: (error as Error).message ?? String(error) }),
  );
}

/**
 * Frees a job's bytes once its answer is posted. They were allocated by the SMTP thread and
 * transferred here, and this thread's small heap would otherwise free them only when V8's
 * external-memory accounting sets off a GC (its soft limit is 64 MiB): at 100 KiB × 10
 * sessions, ~50 MiB of answered messages waited in the SMTP thread's malloc heap, which glibc
 * then kept (issue 11, RSS). Detaching (transfer to a zero-length buffer) drops the backing
 * store at once; nothing here reads a job's bytes after its answer.
 */
function release(bytes: Uint8Array): void {
  const buffer = bytes.buffer as ArrayBuffer;
  if (!buffer.detached) buffer.transfer(0);
}

const thread = parentPort;
thread.on("message", (job: SigningJob) => {
  const meta = { routingDomain: job.routingDomain, arc: job.arc, authenticationResults: job.authenticationResults, keyOperations: job.keyOperations };
  if ("id" in job) {
    const { id } = job;
    const message =
      "spooled" in job
        ? { head: Buffer.from(job.spooled.head.buffer, job.spooled.head.byteOffset, job.spooled.head.byteLength), file: { path: job.spooled.path, bytes: job.spooled.bytes } }
        : Buffer.from(job.message.buffer, job.message.byteOffset, job.message.byteLength);
    const carried = "spooled" in job ? job.spooled.head : job.message;
    answer(sign({ message, ...meta }), (reply, transfer) => {
      thread.postMessage({ id, ...reply }, transfer ?? []);
      release(carried);
    });
    return;
  }
  const { port } = job;
  answer(sign({ message: receiveFromPort(port), ...meta }), (reply, transfer) => {
    port.postMessage(reply, transfer ?? []);
    port.close();
  });
});
parentPort.postMessage("ready");
