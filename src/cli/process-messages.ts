/**
 * What a service process tells the primary of `mailroute start --processes n` over the cluster's
 * IPC channel: that it serves (and where), or why it could not start — as the CliError the
 * single-process start would have printed, so the primary reports it once, word for word.
 */
import type { AddressInfo } from "node:net";

/** The environment variable that makes a cluster worker service process `slot` (1-based). */
export const PROCESS_SLOT_ENV = "MAILROUTE_PROCESS_SLOT";

export interface ProcessReady {
  type: "mailroute:ready";
  nodeId: string;
  smtp: AddressInfo;
  http: AddressInfo;
}

export interface ProcessStartFailed {
  type: "mailroute:start-failed";
  message: string;
  hint: string | null;
  exitCode: number;
}

export type ProcessMessage = ProcessReady | ProcessStartFailed;

export function isProcessMessage(message: unknown): message is ProcessMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return type === "mailroute:ready" || type === "mailroute:start-failed";
}
