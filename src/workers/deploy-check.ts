/**
 * Proves a worker runs before a deploy reports success: its modules load in a throwaway workerd
 * process (with its real bindings, D1 and R2 in memory) and its default export has the handler
 * mail needs — email(), or queue() for a worker that only consumes a queue.
 *
 * Why: a bundle that cannot load used to deploy with exit 0, and then every message got 451; a
 * worker without email() accepted mail it could never handle. Both are now refused at deploy,
 * with workerd's own words, before the store changes.
 *
 * Promises: the process is always stopped; the check never touches the account's D1 / R2 data;
 * it ends within `startTimeoutMs` plus a probe bounded by PROBE_WITHIN_MS.
 */
import { InvocationRecord } from "./invocation-record.ts";
import { createHostBridge } from "./host-bridge.ts";
import { fingerprintOf, RuntimeGeneration, startFailureText } from "./runtime-generation.ts";
import type { HostHandlers, WorkerDefinition } from "./worker-types.ts";
import { WorkerCallError } from "./worker-types.ts";

export type DeployCheck = { ok: true; handlers: string[] } | { ok: false; error: string };

const PROBE_WITHIN_MS = 10_000;

const NO_HOST: HostHandlers = {
  forward: async () => refuse(),
  reply: async () => refuse(),
  sendEmail: async () => refuse(),
  kv: { get: async () => refuse(), put: async () => refuse(), delete: async () => refuse(), list: async () => refuse() },
};

function refuse(): never {
  throw new WorkerCallError("not available while a deploy checks the worker");
}

/** Loads `definition` alone and asks which handlers it exports. */
export async function checkWorkerLoads(definition: WorkerDefinition, options: { startTimeoutMs?: number } = {}): Promise<DeployCheck> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const checked: WorkerDefinition = { ...definition, storageDir: undefined };
  const records = new Map<string, InvocationRecord>();
  const generation = new RuntimeGeneration({
    account: definition.account,
    workers: new Map([[definition.name, { definition: checked, fingerprint: fingerprintOf(checked) }]]),
    hostBridge: createHostBridge(records),
    outboundAllow: [],
    memoryLimitBytes: null,
    onEvent: () => undefined,
  });
  let startTimer: NodeJS.Timeout | undefined;
  let timeout: NodeJS.Timeout | undefined;
  try {
    const started = await Promise.race([
      generation.ready.then(() => true),
      new Promise<false>((resolve) => (startTimer = setTimeout(() => resolve(false), startTimeoutMs))),
    ]);
    clearTimeout(startTimer);
    if (!started) return { ok: false, error: `the worker did not start within ${startTimeoutMs} ms (module-level code still running)` };
    const record = new InvocationRecord(checked, { from: "", to: "", raw: Buffer.alloc(0), handler: { kind: "probe" } }, NO_HOST);
    records.set(record.id, record);
    const probe = await Promise.race([
      generation.dispatch(record),
      new Promise<null>((resolve) => (timeout = setTimeout(() => resolve(null), PROBE_WITHIN_MS))),
    ]);
    if (probe === null) return { ok: false, error: `the worker did not answer the handler probe within ${PROBE_WITHIN_MS} ms` };
    if (probe.error !== undefined || probe.handlers === undefined) return { ok: false, error: probe.error ?? "the worker's handlers could not be read" };
    return { ok: true, handlers: probe.handlers };
  } catch (error) {
    return { ok: false, error: startFailureText(error) };
  } finally {
    clearTimeout(startTimer);
    clearTimeout(timeout);
    await generation.stop("checked");
  }
}
