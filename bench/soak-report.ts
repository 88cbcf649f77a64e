/**
 * The soak's verdict, computed from what the outside world saw — the senders' attempts, the
 * destination's stored copies, the kills — never from mailroute's own account. Pure.
 *
 * Promises: `lost` counts messages mailroute answered 250 for that some required destination
 * never stored (the one number that must be 0); `duplicates` counts extra stored copies per
 * destination (a failover chain counts as one destination: a copy at each member is a
 * duplicate); each duplicate gets a cause derived from timing: the attempt its first copy
 * belongs to, and the kill (if any) that cut that attempt off after the destination's 250.
 */
import type { StoredCopy } from "../test/support/flaky-sink.ts";
import type { MessageRecord } from "./soak-sender.ts";

export interface Kill {
  at: number;
  kind: "timer" | "after-250";
}

/** Per rule address: the destination groups that must each end up with exactly one copy. */
export type ExpectedDestinations = Record<string, readonly (readonly string[])[]>;

export interface Duplicate {
  messageId: string;
  destination: string;
  copies: number;
  cause: string;
}

export interface SoakFigures {
  messages: number;
  accepted: number;
  refused: number;
  gaveUp: number;
  lost: { messageId: string; destination: string }[];
  duplicates: Duplicate[];
  duplicatesByDestination: Record<string, number>;
  causes: Record<string, number>;
  attempts: Record<string, number>;
  heldReplies: number;
  kills: Record<Kill["kind"], number>;
}

export function soakFigures(records: readonly MessageRecord[], copies: readonly StoredCopy[], kills: readonly Kill[], expected: ExpectedDestinations): SoakFigures {
  const byMessage = new Map<string, StoredCopy[]>();
  for (const copy of copies) {
    const list = byMessage.get(copy.messageId) ?? [];
    list.push(copy);
    byMessage.set(copy.messageId, list);
  }
  const lost: SoakFigures["lost"] = [];
  const duplicates: Duplicate[] = [];
  const attempts: Record<string, number> = {};
  let heldReplies = 0;
  for (const record of records) {
    for (const attempt of record.attempts) {
      attempts[attempt.result] = (attempts[attempt.result] ?? 0) + 1;
      if (attempt.result === "tempfail" && /forwarding held/i.test(attempt.line)) heldReplies++;
    }
    const mine = byMessage.get(record.message.messageId) ?? [];
    for (const group of expected[record.message.rcpt.toLowerCase()] ?? []) {
      const members = new Set(group.map((address) => address.toLowerCase()));
      const stored = mine.filter((copy) => members.has(copy.rcpt.toLowerCase())).sort((a, b) => a.acceptedAt - b.acceptedAt);
      const label = group.join(":");
      if (stored.length === 0 && record.outcome === "accepted") lost.push({ messageId: record.message.messageId, destination: label });
      if (stored.length > 1) duplicates.push({ messageId: record.message.messageId, destination: label, copies: stored.length, cause: causeOf(record, stored[0]!, kills) });
    }
  }
  const duplicatesByDestination: Record<string, number> = {};
  const causes: Record<string, number> = {};
  for (const duplicate of duplicates) {
    duplicatesByDestination[duplicate.destination] = (duplicatesByDestination[duplicate.destination] ?? 0) + duplicate.copies - 1;
    const kind = duplicate.cause.replace(/ \(.*\)$/, "");
    causes[kind] = (causes[kind] ?? 0) + duplicate.copies - 1;
  }
  return {
    messages: records.length,
    accepted: records.filter((record) => record.outcome === "accepted").length,
    refused: records.filter((record) => record.outcome === "refused").length,
    gaveUp: records.filter((record) => record.outcome === "gave-up").length,
    lost,
    duplicates,
    duplicatesByDestination,
    causes,
    attempts,
    heldReplies,
    kills: { timer: kills.filter((kill) => kill.kind === "timer").length, "after-250": kills.filter((kill) => kill.kind === "after-250").length },
  };
}

/** Why a destination stored this message twice, judged from the first copy's attempt. */
function causeOf(record: MessageRecord, first: StoredCopy, kills: readonly Kill[]): string {
  const attempt = record.attempts.find((candidate) => candidate.start <= first.acceptedAt && first.acceptedAt <= candidate.end);
  if (attempt === undefined) return "first copy stored outside any sender attempt (relay outlived the sender's wait)";
  if (attempt.result === "connection-lost") {
    const kill = kills.find((candidate) => candidate.at >= first.acceptedAt && candidate.at <= attempt.end);
    if (kill !== undefined) return `mailroute killed after the destination's 250, before answering the sender (${kill.at - first.acceptedAt} ms after, ${kill.kind} kill)`;
    return "sender lost the connection after the destination's 250, no kill";
  }
  if (attempt.result === "tempfail") return `mailroute answered 4xx although the destination had answered 250 (${attempt.line})`;
  return `other (first copy's attempt ended ${attempt.result})`;
}
