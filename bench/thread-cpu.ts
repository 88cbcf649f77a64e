/**
 * CPU time by kind of thread, for the benchmark: where a mailroute process's CPU goes while a
 * cell runs, and how busy its SMTP thread and the whole machine were (issue 11 asks that the
 * process no longer be idle under load, and which thread bounds a cell decides what to change).
 * Read from Linux's /proc: each thread's user + system time in /proc/<pid>/task/<tid>/stat,
 * summed by the name Node gives it, over the process and its descendants (`--processes n`);
 * the machine's busy time from the first line of /proc/stat.
 *
 * Promises: a reading is null where /proc cannot be read (not Linux, or the process exited),
 * never a made-up 0; a thread that exits between two readings only lowers its kind's figure
 * (what it used is gone with it), so figures are lower bounds; kinds are told apart by the
 * thread names Node and mailroute set (the main thread of each process is its SMTP thread).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { descendantProcesses } from "./rss-sampler.ts";

export const THREAD_KINDS = ["smtp", "signing", "store-writer", "libuv-pool", "v8-helpers", "other"] as const;
export type ThreadKind = (typeof THREAD_KINDS)[number];

/** CPU milliseconds by kind of thread. */
export type ThreadCpu = Record<ThreadKind, number>;

/**
 * A thread's kind from its name as the kernel keeps it (15 bytes at most: "mailroute-signing-0"
 * reads "mailroute-signi"): Worker `name`s for mailroute's own threads, "libuv-worker" for
 * libuv's pool (RSA signatures, file system, DNS lookups), V8's platform workers for garbage
 * collection and compilation.
 */
export function threadKind(name: string, isMain: boolean): ThreadKind {
  if (isMain) return "smtp";
  if (name.startsWith("mailroute-signi")) return "signing";
  if (name.startsWith("mailroute-store")) return "store-writer";
  if (name.startsWith("libuv-worker")) return "libuv-pool";
  if (name.startsWith("V8")) return "v8-helpers";
  return "other";
}

/**
 * A task's name and user + system clock ticks from its stat line. The name sits in parentheses
 * and may itself hold spaces and parentheses, so the fields are counted from the last ")".
 */
export function parseTaskStat(line: string): { name: string; ticks: number } | null {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  // after ")": state (field 3), …, utime (field 14), stime (field 15)
  const fields = line.slice(close + 2).trim().split(/\s+/);
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  if (!Number.isFinite(user) || !Number.isFinite(system)) return null;
  return { name: line.slice(open + 1, close), ticks: user + system };
}

let ticksPerSecond: number | null = null;

/** The kernel's clock ticks per second (sysconf CLK_TCK, 100 on every Linux seen here). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond !== null) return ticksPerSecond;
  try {
    const read = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "latin1", timeout: 5000 }).trim());
    ticksPerSecond = Number.isInteger(read) && read > 0 ? read : 100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

function emptyCpu(): ThreadCpu {
  return Object.fromEntries(THREAD_KINDS.map((kind) => [kind, 0])) as ThreadCpu;
}

/** CPU used so far by every thread of `pid` and of its descendants, by kind; null if `pid` cannot be read. */
export function readThreadCpu(pid: number): ThreadCpu | null {
  const perTick = 1000 / clockTicksPerSecond();
  const total = emptyCpu();
  const readProcess = (id: number): boolean => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${id}/task`);
    } catch {
      return false;
    }
    for (const tid of tasks) {
      let stat: ReturnType<typeof parseTaskStat>;
      try {
        stat = parseTaskStat(readFileSync(`/proc/${id}/task/${tid}/stat`, "latin1"));
      } catch {
        continue; // the thread ended since the listing
      }
      if (stat !== null) total[threadKind(stat.name, tid === String(id))] += stat.ticks * perTick;
    }
    return true;
  };
  if (!readProcess(pid)) return null;
  for (const id of descendantProcesses(pid)) readProcess(id);
  return total;
}

/** What each kind used between two readings (never below 0: threads that exited took theirs with them). */
export function cpuBetween(before: ThreadCpu, after: ThreadCpu): ThreadCpu {
  const used = emptyCpu();
  for (const kind of THREAD_KINDS) used[kind] = Math.max(0, after[kind] - before[kind]);
  return used;
}

/** The machine's busy and total CPU time so far, in clock ticks over all cores (/proc/stat); null off Linux. */
export function readMachineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user)
    const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (values.length < 8 || values.some((value) => !Number.isFinite(value))) return null;
    const total = values.reduce((sum, value) => sum + value, 0);
    // idle and iowait: the fourth and fifth
    return { busy: total - values[3]! - values[4]!, total };
  } catch {
    return null;
  }
}

/** The share of all cores busy between two machine readings (0 to 1), or null. */
export function machineBusyBetween(before: { busy: number; total: number } | null, after: { busy: number; total: number } | null): number | null {
  if (before === null || after === null || after.total <= before.total) return null;
  return (after.busy - before.busy) / (after.total - before.total);
}
