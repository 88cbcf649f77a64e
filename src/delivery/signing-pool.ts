/**
 * SigningPool: a MessageSigner that signs and seals on worker threads (signing-worker.ts), so
 * mailroute uses more than one core without splitting the SMTP process: the delivery ledger,
 * the configuration version, rate limits and worker runtimes stay in one process, unchanged
 * (issue 11). Each job goes to the thread with the fewest jobs in flight.
 *
 * Promises:
 * - `sign` keeps createMessageSigner's contract (header lines to prepend, never a modified
 *   message; throws only when the message stream failed or the keys could not be loaded):
 *   a message given as a stream is streamed to the thread with flow control (port-stream.ts),
 *   never held whole, and read exactly once; one given as a Buffer of at most INLINE_BYTES goes
 *   in the job itself (one message each way instead of a channel, chunks, acknowledgements
 *   and an end: cross-thread wake-ups are what a small message's hop cost, issue 11);
 * - a thread that dies fails only the jobs it held (rejected, so the sender hears 451) and is
 *   replaced; `close` ends every thread and rejects what is still waiting;
 * - with `threads: 0` it signs on the calling thread instead (same signer, no pool), each
 *   signature's key operation on libuv's thread pool, so the thread keeps serving meanwhile,
 *   or inline when the caller says it has nothing else to do (`callerIdle`) and the message is
 *   a Buffer of at most SIGN_HERE_BYTES (keyOperationsHere);
 * - with signing threads, every job goes to one of them, however idle the caller: see
 *   keyOperationsHere for why a message alone is not signed on the calling thread.
 */
import { availableParallelism } from "node:os";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { DkimKeyStore } from "./dkim-keys.ts";
import type { MessageSigner, SignedHeaders, SignRequest } from "./message-signer.ts";
import { sendOverPort } from "./port-stream.ts";
import type { KeyOperationSite } from "./signature-field.ts";
import { isSpooledCopy, type SpooledCopy } from "./spooled-copy.ts";
import { serveKeys } from "./signing-keys-remote.ts";
import type { SigningAnswer, SigningJob, SigningWorkerData } from "./signing-worker.ts";

export interface SigningPoolOptions {
  /**
   * The keys to sign with (cluster mode: over the sealed store). Threads ask this thread for
   * them, so they load and generate in one place. Default: files under `keyDir`.
   */
  keys?: DkimKeyStore;
  keyDir?: string;
  selector?: string;
  ed25519?: boolean;
  hostname: string;
  /** Signing threads; default: one fewer than the cores (at least one, at most four). */
  threads?: number;
  /**
   * A SQLite file whose store writer service (sqlite-writer-service.ts) the first thread also
   * runs, reached through `writerPort` (SqliteWriter.hostedBy): one worker thread for both, not
   * two (issue 11, RSS). Ignored with `threads: 0`.
   */
  hostStoreWriter?: string;
   /**
   * With `threads: 0`: whether the calling thread has nothing else to do now (start-service: no
   * SMTP session but the one asking has sent a command in the last 100 ms). Asked only when the
   * rest of keyOperationsHere holds. Absent: never.
   */
  callerIdle?: () => boolean;
}

export interface SigningPool {
  readonly sign: MessageSigner;
  readonly threads: number;
  /**
   * The port of the store writer service the first thread runs (`hostStoreWriter`), once that
   * thread is ready; after the thread died, its replacement's. Null when the pool hosts none.
   */
  readonly writerPort: (() => Promise<MessagePort>) | null;
  /**
   * Each thread's V8 heap (committed and used bytes) and the bytes outside it that the thread's
   * isolate still accounts for (array buffers: message copies not yet freed): what the pool
   * costs in memory, for metrics and tests.
   */
  heapStatistics(): Promise<{ totalHeapSize: number; usedHeapSize: number; externalMemory: number }[]>;
  close(): Promise<void>;
}

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  started: boolean;
  inFlight: Set<(error: Error) => void>;
  /** Jobs carried whole, by id, until their answer comes on the thread's port. */
  inline: Map<number, (answer: SigningAnswer) => void>;
  /** This side of the store writer service's port, when this thread hosts it; `closed` once the service or the thread ended. */
  store: { port: MessagePort; closed: boolean } | null;
  /** Resolves after the thread exited and, if the pool is open, was replaced. */
  exited: Promise<void>;
}

/** A message up to this size, given as a Buffer, is posted whole with its job. */
export const INLINE_BYTES = 256 * 1024;

const WORKER_URL = new URL("./signing-worker.ts", import.meta.url);
// A signing thread holds keys and a few chunks in flight (the message is streamed under flow
// control), but V8 sizes its young generation for throughput: under load it grew to ~150 MiB
// of mostly garbage per thread (issue 11, RSS). A small young generation keeps it near its
// live size; scavenges of a few MiB cost microseconds.
export const SIGNING_THREAD_LIMITS = Object.freeze({ maxYoungGenerationSizeMb: 12 });

/**
 * Where a job's key operations run on its signing thread, given the jobs that thread already
 * has in flight. Alone, inline: nothing waits behind it, and each of its three RSA signatures
 * is one call instead of a trip to libuv's pool and back (a message signed one at a time is
 * answered soonest). Behind others, on libuv's pool: the signatures of several messages then
 * run on every core at once instead of one after another on this thread, and the thread stays
 * free to take the next job and the store writer's statements, which it also runs (issue 11:
 * with RSA-2048 at ~0.8 ms a signature, inline signing held 1 KiB × 10 sessions to 178–190
 * msg/s with the thread 70 % busy; on the pool, 221–237).
 */
export function keyOperationsFor(jobsInFlight: number): KeyOperationSite {
  return jobsInFlight === 0 ? "inline" : "thread-pool";
}

/**
 * With no signing thread, a message up to this size, given as a Buffer, has its key operations
 * made inline when the calling thread is idle: its hashing costs little beside its RSA signatures.
 */
export const SIGN_HERE_BYTES = 64 * 1024;

/**
 * With no signing thread (`threads: 0`), where a job's key operations run on the calling thread:
 * inline when that thread has nothing else to do and the message is a Buffer of at most
 * SIGN_HERE_BYTES (one call each, no trip to libuv's pool and back: ~0.3 ms of a message signed
 * alone), else on libuv's pool, so the thread keeps serving the other sessions meanwhile.
 *
 * With signing threads, a message alone is not signed on the calling thread either, though that
 * would save the hop to a signing thread and back (~0.4 ms at the median, issue 11, tenth
 * machine): under load every copy goes to the signing threads, so the calling thread's signer
 * stays cold, and its first use after a load (the bench's latency phase, a quiet evening after a
 * busy day) cost the SMTP thread 20–32 ms of CPU in each of its first two messages (interpreted
 * and lazily compiled code, then ~20 deoptimised functions recompiled; fourteenth machine, issue
 * 11): the two slowest messages of the bench's 300. The signing thread's signer is warm.
 */
export function keyOperationsHere(callerIdle: () => boolean, message: SignRequest["message"]): KeyOperationSite {
  // the caller is asked last
  return Buffer.isBuffer(message) && message.length <= SIGN_HERE_BYTES && callerIdle() ? "inline" : "thread-pool";
}

export function defaultSigningThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export async function createSigningPool(options: SigningPoolOptions): Promise<SigningPool> {
  const size = options.threads ?? defaultSigningThreads();
  const keys = options.keys ?? new DkimKeyStore({ dir: options.keyDir, selector: options.selector, ed25519: options.ed25519 });
  let closed = false;
  const threads: Thread[] = [];

  function start(index: number): Thread {
    const { port1: keyPort, port2: threadKeyPort } = new MessageChannel();
    serveKeys(keyPort, (domain) => keys.keysFor(domain));
    // an idle key port must not keep the process alive
    keyPort.unref();
    const storeChannel = index === 0 && options.hostStoreWriter !== undefined ? new MessageChannel() : null;
    const data: SigningWorkerData = {
      keyPort: threadKeyPort,
      hostname: options.hostname,
      ...(storeChannel === null ? {} : { store: { port: storeChannel.port2, path: options.hostStoreWriter! } }),
    };
    const transferList = storeChannel === null ? [threadKeyPort] : [threadKeyPort, storeChannel.port2];
    const worker = new Worker(WORKER_URL, { workerData: data, transferList, name: `mailroute-signing-${index}`, resourceLimits: SIGNING_THREAD_LIMITS });
    worker.once("exit", () => keyPort.close());
    const store = storeChannel === null ? null : { port: storeChannel.port1, closed: false };
    store?.port.once("close", () => (store.closed = true));
    const thread: Thread = {
      worker,
      started: false,
      inFlight: new Set(),
      inline: new Map(),
      store,
      exited: Promise.resolve(),
      ready: new Promise((resolve, reject) => {
        worker.once("message", () => {
          thread.started = true;
          resolve();
        });
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`signing thread exited (${code}) before it was ready`)));
      }),
    };
    // a thread that dies takes only its own jobs with it; the next job gets a fresh thread
    // (one that never started is not retried: it would fail the same way, in a loop)
    const fail = (error: Error) => {
      for (const reject of thread.inFlight) reject(error);
      thread.inFlight.clear();
      if (!closed && thread.started && threads[index] === thread) threads[index] = start(index);
    };
    worker.on("message", (message: "ready" | (SigningAnswer & { id: number })) => {
      if (typeof message !== "object") return;
      const deliver = thread.inline.get(message.id);
      thread.inline.delete(message.id);
      // the thread is only kept alive by jobs in flight, as with a streamed job's port
      if (thread.inline.size === 0) worker.unref();
      deliver?.(message);
    });
    worker.on("error", (error) => fail(new Error(`signing thread failed: ${error.message}`)));
    worker.on("exit", (code) => fail(new Error(`signing thread exited (${code})`)));
    // registered after `fail`, so it resolves once a replacement is in place
    thread.exited = new Promise((resolve) => worker.once("exit", () => resolve()));
    // idle threads must not keep the process alive (a job in flight does: its port is listened to)
    thread.ready.then(() => worker.unref(), () => undefined);
    return thread;
  }

  for (let index = 0; index < size; index++) threads.push(start(index));
  await Promise.all(threads.map((thread) => thread.ready));

  let nextId = 0;

  function received(answer: SigningAnswer): SignedHeaders {
    if ("error" in answer) throw new Error(answer.error);
    const { result } = answer;
    return { ...result, headers: Buffer.from(result.headers.buffer, result.headers.byteOffset, result.headers.byteLength) };
  }

  /** A job answered on the thread's own port, by id: a message posted whole, or a spilled one named by its spool. */
  async function signInline(thread: Thread, request: Parameters<MessageSigner>[0], carried: Buffer | SpooledCopy, keyOperations: KeyOperationSite): Promise<SignedHeaders> {
    const id = nextId++;
    // a copy the thread owns, transferred: the Buffer may be a slice of a shared pool
    const bytes = new Uint8Array(Buffer.isBuffer(carried) ? carried : carried.head);
    const meta = { id, routingDomain: request.routingDomain, arc: request.arc, authenticationResults: request.authenticationResults, keyOperations };
    const job: SigningJob = Buffer.isBuffer(carried) ? { ...meta, message: bytes } : { ...meta, spooled: { head: bytes, path: carried.file.path, bytes: carried.file.bytes } };
    const answer = await new Promise<SigningAnswer>((resolve, reject) => {
      thread.inFlight.add(reject);
      thread.inline.set(id, (reply) => {
        thread.inFlight.delete(reject);
        resolve(reply);
      });
      if (thread.inline.size === 1) thread.worker.ref();
      thread.worker.postMessage(job, [bytes.buffer]);
    });
    return received(answer);
  }

  async function signOnThread(request: Parameters<MessageSigner>[0]): Promise<SignedHeaders> {
    if (closed) throw new Error("signing pool is closed");
    const thread = threads.reduce((best, candidate) => (candidate.inFlight.size < best.inFlight.size ? candidate : best));
    const keyOperations = keyOperationsFor(thread.inFlight.size);
    await thread.ready;
    if (Buffer.isBuffer(request.message) && request.message.length <= INLINE_BYTES) return signInline(thread, request, request.message, keyOperations);
    if (isSpooledCopy(request.message)) return signInline(thread, request, request.message, keyOperations);
    const source = request.message;
    const { port1, port2 } = new MessageChannel();
    try {
      return await new Promise<SignedHeaders>((resolve, reject) => {
        thread.inFlight.add(reject);
        const settle = () => thread.inFlight.delete(reject);
        // the same port carries the stream's acknowledgements ("ack"); the answer is the one object
        port1.on("message", (answer: "ack" | SigningAnswer) => {
          if (answer === "ack") return;
          settle();
          try {
            resolve(received(answer));
          } catch (error) {
            reject(error as Error);
          }
        });
        const job: SigningJob = { port: port2, routingDomain: request.routingDomain, arc: request.arc, authenticationResults: request.authenticationResults, keyOperations };
        thread.worker.postMessage(job, [port2]);
        // the answer can only come after the last byte, so a failed send is the job's failure
        sendOverPort(port1, source).catch((error: Error) => {
          settle();
          reject(error);
        });
      });
    } finally {
      port1.close();
    }
  }

  async function writerPort(): Promise<MessagePort> {
    // a port whose thread just died may be seen before the pool replaced that thread: wait for it
    for (let attempt = 0; attempt < 3; attempt++) {
      if (closed) throw new Error("signing pool is closed");
      const thread = threads[0]!;
      await thread.ready;
      if (!thread.store!.closed) return thread.store!.port;
      await thread.exited;
    }
    throw new Error("the signing thread that hosts the store writer keeps ending");
  }

  return {
    threads: size,
    writerPort: size > 0 && options.hostStoreWriter !== undefined ? writerPort : null,
    sign: size === 0 ? signerHere(keys, options.hostname, options.callerIdle ?? (() => false)) : signOnThread,
    async heapStatistics() {
      const all = await Promise.all(threads.map((thread) => thread.worker.getHeapStatistics()));
      return all.map((heap) => ({ totalHeapSize: heap.total_heap_size, usedHeapSize: heap.used_heap_size, externalMemory: (heap as { external_memory?: number }).external_memory ?? 0 }));
    },
    async close() {
      closed = true;
      const error = new Error("signing pool is closed");
      for (const thread of threads) {
        for (const reject of thread.inFlight) reject(error);
        thread.inFlight.clear();
      }
      await Promise.all(threads.map((thread) => thread.worker.terminate()));
    },
  };
}

/** The signer on this thread (`threads: 0`), loaded on first use; each job's key operations where keyOperationsHere says. */
function signerHere(keys: DkimKeyStore, hostname: string, callerIdle: () => boolean): MessageSigner {
  let signer: Promise<MessageSigner> | null = null;
  return async function signOnCallingThread(request) {
    signer ??= import("./message-signer.ts").then(({ createMessageSigner }) => createMessageSigner({ keys, hostname }));
    return (await signer)({ ...request, keyOperations: keyOperationsHere(callerIdle, request.message) });
  };
}
