/**
 * Structured logging: one JSON line per event ({event, ...fields}), never message bodies and
 * never secrets (callers pass only envelope data, codes and ids).
 */
import type { Writable } from "node:stream";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: LogLevel, event: string, fields?: Readonly<Record<string, unknown>>): void;
  child(fields: Readonly<Record<string, unknown>>): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: { stream?: Writable; level?: LogLevel; base?: Record<string, unknown> } = {}): Logger {
  const stream = options.stream ?? process.stdout;
  const threshold = ORDER[options.level ?? "info"];
  const base = options.base ?? {};
  return {
    log(level, event, fields = {}) {
      if (ORDER[level] < threshold) return;
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...base, ...fields }, replacer)}\n`);
    },
    child(fields) {
      return createLogger({ stream, level: options.level ?? "info", base: { ...base, ...fields } });
    },
  };
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

export const silentLogger: Logger = { log() {}, child() { return silentLogger; } };
