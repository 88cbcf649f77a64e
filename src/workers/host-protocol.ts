/**
 * The wire protocol between our entry worker (inside workerd) and the Node host, in one place so
 * both sides read the same names. The entry worker receives this object as JSON at load time
 * (entry-worker.ts); the host bridge (host-bridge.ts) imports it.
 *
 * Shape:
 * - host → workerd: POST /invoke, body = raw message, envelope and invocation id in headers
 *   (URI-encoded: SMTPUTF8 addresses are not valid header bytes). The entry worker answers an
 *   EntryReport as JSON.
 * - workerd → host: POST http://host/<op> through the `hostBinding` service binding, the
 *   invocation id in a header; a failure answers 4xx/5xx with a HostProblem, which the entry
 *   worker rethrows as an Error (or TypeError) carrying exactly `error`.
 */
import type { HandlerResponse, QueueVerdicts } from "./worker-types.ts";

export const HOST_PROTOCOL = {
  hostBinding: "__MAILROUTE_HOST",
  /** The entry worker's host API (entry-bindings.ts), a wrapped binding over `hostBinding`. */
  bindingsBinding: "__MAILROUTE_BINDINGS",
  configBinding: "__MAILROUTE_CONFIG",
  invokePath: "/invoke",
  pingPath: "/ping",
  /** The user's fetch() / queue() handlers, and the probe a deploy asks which handlers exist. */
  fetchPath: "/fetch",
  queuePath: "/queue",
  probePath: "/probe",
  headers: {
    invocation: "x-mailroute-invocation",
    from: "x-mailroute-from",
    to: "x-mailroute-to",
    binding: "x-mailroute-binding",
    /** URI-encoded JSON: the KV put options, or the metadata a KV get found */
    kv: "x-mailroute-kv",
    /** URI-encoded JSON: a fetch invocation's method, url and headers, or a queue batch */
    handler: "x-mailroute-handler",
  },
  /** Console output kept per invocation: a chatty worker must not grow the host's memory. */
  maxLogs: 500,
  maxLogChars: 8192,
} as const;

export type HostOp = "forward" | "reply" | "send" | "kv-get" | "kv-put" | "kv-delete" | "kv-list" | "ae-write" | "queue-send" | "ai-run";

/** The worker's bindings as the entry worker builds them into `env`. */
export interface EntryConfig {
  vars: Record<string, unknown>;
  secrets: Record<string, string>;
  kv: string[];
  sendEmail: string[];
  /** Bindings workerd itself provides (D1, R2): passed from the entry's env to the worker's. */
  native?: string[];
  analytics?: string[];
  queues?: string[];
  ai?: string[];
  /** Declared bindings mailroute does not provide: a stand-in that throws naming them. */
  missing?: { binding: string; type: string }[];
}

export interface HostProblem {
  error: string;
  name: "Error" | "TypeError";
}

/** What the entry worker answers for one invocation. */
export interface EntryReport {
  rejectReason?: string;
  /** The handler threw (or was missing): the text the SMTP answer carries. */
  error?: string;
  logs: { level: string; message: string; at: number }[];
  logsDropped: number;
  response?: HandlerResponse;
  queue?: QueueVerdicts;
  handlers?: string[];
}
