/**
 * Runs a worker's fetch() or queue() invocation through the same admission as worker mail: a
 * lease from the InvocationLimiter (fair shares per account and worker, the message-memory
 * budget), waited for at most a share of the deadline, then the invocation with the rest of it.
 *
 * Why: fetch() requests and queue batches run in the same per-account workerd process as
 * email(); without admission a flood of HTTP requests to one worker would take the slots and
 * memory that worker mail is promised (issue 8's fair shares), and bypass the deadline.
 *
 * Promises: the lease is always released; an invocation that gets no lease within the wait
 * runs nothing and settles as a timeout naming why (fetch answers 503, a queue batch is retried).
 */
import type { InvocationLimiter } from "./invocation-limiter.ts";
import type { EmailInvocation, HostHandlers, InvocationResult, WorkerDefinition } from "./worker-types.ts";

export type WorkerInvoke = (definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers) => Promise<InvocationResult>;

export interface AdmittedInvokerOptions {
  limiter: InvocationLimiter;
  invoke(definition: WorkerDefinition, invocation: EmailInvocation, handlers: HostHandlers, options: { deadlineMs: number }): Promise<InvocationResult>;
  /** The whole budget of one invocation, waiting included (--worker-deadline). */
  deadlineMs: number;
  /** The share of the deadline admission may take (worker-step.ts's MAX_WAIT_SHARE). */
  maxWaitShare: number;
}

/** The bytes an invocation holds in memory: a request body or a queue batch. */
function heldBytes(invocation: EmailInvocation): number {
  const handler = invocation.handler;
  if (handler === undefined) return invocation.raw.length;
  if (handler.kind === "fetch") return handler.body?.length ?? 0;
  if (handler.kind === "queue") return handler.messages.reduce((sum, message) => sum + Buffer.byteLength(message.body), 0);
  return 0;
}

export function admittedInvoker(options: AdmittedInvokerOptions): WorkerInvoke {
  return async (definition, invocation, handlers) => {
    const started = performance.now();
    const waitMs = options.deadlineMs * options.maxWaitShare;
    const lease = await options.limiter.acquire({ account: definition.account, worker: definition.name, bytes: heldBytes(invocation) }, waitMs);
    if (lease === null) {
      const error = `not run: no capacity for this worker within ${Math.round(waitMs)} ms (its share of concurrent invocations or of message memory was in use)`;
      return { outcome: "timeout", error, forwards: [], logs: [{ level: "error", message: `mailroute: ${error}`, at: Date.now() }], durationMs: Math.round(performance.now() - started) };
    }
    try {
      return await options.invoke(definition, invocation, handlers, { deadlineMs: Math.max(1, options.deadlineMs - (performance.now() - started)) });
    } finally {
      lease.release();
    }
  };
}
