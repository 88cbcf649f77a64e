/**
 * Workers AI through an endpoint the operator configures (`--workers-ai-url`, the token in
 * MAILROUTE_WORKERS_AI_TOKEN): no model runs on a mailroute server, so `env.AI.run(model,
 * inputs)` is sent where the operator says — Cloudflare's own REST API
 * (`https://api.cloudflare.com/client/v4/accounts/<id>/ai`) or anything that answers its shape:
 * `POST <url>/run/<model>` with the inputs as JSON, answered `{success, result, errors}`.
 *
 * Promises: every call is bounded by `timeoutMs`; a failure reaches the worker as an error
 * naming the model and the endpoint's own error message or HTTP status, never the token; a
 * non-envelope JSON answer is handed to the worker as it is.
 */
import { WorkerCallError } from "./worker-types.ts";

export interface WorkersAiOptions {
  url: string;
  token: string | null;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function createWorkersAiRunner(options: WorkersAiOptions): (model: string, inputs: unknown) => Promise<unknown> {
  const base = options.url.replace(/\/+$/, "");
  const send = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 60_000;
  return async function runAi(model, inputs) {
    if (!/^[\w@./:-]{1,200}$/.test(model)) throw new WorkerCallError(`Workers AI: "${model.slice(0, 60)}" is not a model name`);
    let response: Response;
    try {
      response = await send(`${base}/run/${model.split("/").map(encodeURIComponent).join("/")}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", ...(options.token === null ? {} : { authorization: `Bearer ${options.token}` }) },
        body: JSON.stringify(inputs ?? {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const reason = (error as Error).name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : "the endpoint could not be reached";
      throw new WorkerCallError(`Workers AI: ${model}: ${reason}`);
    }
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    const envelope = body as { success?: unknown; result?: unknown; errors?: { message?: unknown }[] } | null;
    if (!response.ok || envelope?.success === false) {
      const message = envelope?.errors?.map((error) => String(error.message ?? "")).filter(Boolean).join("; ");
      throw new WorkerCallError(`Workers AI: ${model}: ${message || `the endpoint answered HTTP ${response.status}`}`);
    }
    return envelope !== null && typeof envelope === "object" && "result" in envelope ? envelope.result : body;
  };
}
