/**
 * The operating-system view of one workerd process (Linux /proc): which process serves a given
 * port, how much memory it holds, and a cap on how much it may commit.
 *
 * Why a data-segment limit: workerd and Miniflare offer no memory limit of their own (V8's heap
 * limit is per isolate and blind to ArrayBuffers). RLIMIT_DATA counts private writable memory,
 * which is what a worker's heap and buffers become, while V8's large PROT_NONE reservations do
 * not count until committed. Measured on workerd 1.20260730: a heap bomb ends in V8's fatal
 * "JavaScript heap out of memory" (the process exits), a buffer bomb gets "RangeError: Array
 * buffer allocation failed"; other processes are untouched either way. The limit is set relative
 * to the process's own idle data size (~570 MB of VmData at ~55 MB RSS), with util-linux prlimit
 * (Node has no setrlimit for another process).
 *
 * Promises: never throws; every function answers null/false where /proc or prlimit is missing
 * (not Linux), so the caller can report that the cap is not enforced.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";

export interface ProcessMemory {
  rssBytes: number;
  dataBytes: number;
}

async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      // local_address is column 1 ("0100007F:1F90"), st is column 3 ("0A" = LISTEN), inode column 9
      if (columns[1]?.endsWith(`:${hexPort}`) && columns[3] === "0A" && columns[9] !== undefined) inodes.add(columns[9]);
    }
  }
  return inodes;
}

async function childrenNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // the command name is parenthesised and may contain spaces: fields resume after the last ")"
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== process.pid) continue;
    const comm = await readFile(`/proc/${entry}/comm`, "utf8").catch(() => "");
    if (comm.trim() === name) pids.push(Number(entry));
  }
  return pids;
}

/** The workerd child of this process that listens on `port`, or null. */
export async function findWorkerdByPort(port: number): Promise<number | null> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return null;
  for (const pid of await childrenNamed("workerd")) {
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return pid;
    }
  }
  return null;
}

export async function readProcessMemory(pid: number): Promise<ProcessMemory | null> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => null);
  if (status === null) return null;
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  const memory = { rssBytes: kib("VmRSS"), dataBytes: kib("VmData") };
  return Number.isNaN(memory.rssBytes) || Number.isNaN(memory.dataBytes) ? null : memory;
}

/** Sets RLIMIT_DATA (soft and hard) of `pid`; false when prlimit is missing or refused. */
export function limitDataSegment(pid: number, bytes: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile("prlimit", ["--pid", String(pid), `--data=${Math.floor(bytes)}`], { timeout: 5000 }, (error) => resolve(error === null));
  });
}
