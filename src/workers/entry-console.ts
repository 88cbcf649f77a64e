/**
 * The entry worker's console capture, shipped as its own module and imported before the user's
 * bundle: ES modules evaluate in import order, so console.* is ours before the worker's top-level
 * code runs, and its load-time output is kept too.
 *
 * Promises: output is attributed to the invocation in whose async context it happens
 * (AsyncLocalStorage, so concurrent invocations in one isolate never mix); output outside any
 * invocation (module load, work leaked past an invocation's end) goes to the next invocation;
 * at most HOST_PROTOCOL.maxLogs lines of HOST_PROTOCOL.maxLogChars each are kept, the rest
 * counted.
 *
 * Like entryModule, `consoleCapture` is shipped as source and must stay self-contained.
 */
import type { AsyncLocalStorage } from "node:async_hooks";
import { HOST_PROTOCOL } from "./host-protocol.ts";

export const CONSOLE_MODULE = "mailroute-console.js";

export interface CapturedLog {
  level: string;
  message: string;
  at: number;
}

/** What the capture tracks of one invocation; the entry worker keeps the rest of its state beside it. */
export interface LogSink {
  logs: CapturedLog[];
  logsDropped: number;
  done: boolean;
}

export interface ConsoleCapture<Sink extends LogSink> {
  als: AsyncLocalStorage<Sink>;
  record(level: string, args: unknown[]): void;
  /** Output that belonged to no invocation, handed to the next one. */
  takeOrphans(): CapturedLog[];
}

export function consoleCapture<Sink extends LogSink>(Als: typeof AsyncLocalStorage, protocol: typeof HOST_PROTOCOL): ConsoleCapture<Sink> {
  const als = new Als<Sink>();
  let orphans: CapturedLog[] = [];

  function formatValue(value: unknown): string {
    if (typeof value === "string") return value;
    if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
    if (typeof value === "function") return `[Function ${value.name || "(anonymous)"}]`;
    if (typeof value !== "object" || value === null) return String(value);
    try {
      const seen = new WeakSet<object>();
      return JSON.stringify(value, (_key, v: unknown) => {
        if (v instanceof Map) return Object.fromEntries(v);
        if (v instanceof Set) return [...v];
        if (typeof v === "bigint") return `${v}n`;
        if (typeof v === "object" && v !== null) {
          if (seen.has(v)) return "[Circular]";
          seen.add(v);
        }
        return v;
      });
    } catch {
      return String(value);
    }
  }

  function record(level: string, args: unknown[]): void {
    const sink = als.getStore();
    const live = sink !== undefined && !sink.done;
    const logs = live ? sink.logs : orphans;
    if (logs.length >= protocol.maxLogs) {
      if (live) sink.logsDropped++;
      return;
    }
    let message = args.map(formatValue).join(" ");
    if (message.length > protocol.maxLogChars) message = `${message.slice(0, protocol.maxLogChars)}…`;
    logs.push({ level, message, at: Date.now() });
  }

  const levels = ["debug", "info", "log", "warn", "error"] as const;
  for (const level of levels) console[level] = (...args: unknown[]) => record(level, args);
  const scope = globalThis as unknown as { addEventListener?(type: string, listener: (event: { reason: unknown }) => void): void };
  scope.addEventListener?.("unhandledrejection", (event) => record("error", ["Uncaught (in promise)", event.reason]));

  return {
    als,
    record,
    takeOrphans() {
      const taken = orphans;
      orphans = [];
      return taken;
    },
  };
}

export const CONSOLE_MODULE_SOURCE = [
  'import { AsyncLocalStorage } from "node:async_hooks";',
  `export default (${consoleCapture.toString()})(AsyncLocalStorage, ${JSON.stringify(HOST_PROTOCOL)});`,
  "",
].join("\n");
