/**
 * RSS sampling for the benchmark: resident set size of this process (process.memoryUsage) or of
 * a child process (Linux /proc/<pid>/status, VmRSS, or RssAnon for its anonymous part), read every
 * ~50 ms while a scenario runs.
 *
 * Promises: a window reports the RSS when it began, the highest sample while it was open and
 * the RSS when it ended, all in bytes; a process whose RSS cannot be read (not Linux, or it
 * exited) yields nulls, never a made-up 0. Sampling never keeps the process alive (unref'd
 * timer). Samples taken on a busy event loop may arrive late, so a very short spike can be
 * missed: peaks are lower bounds.
 */
import { readFileSync } from "node:fs";

export type RssReader = () => number | null;

export interface RssWindowResult {
  startBytes: number | null;
  peakBytes: number | null;
  endBytes: number | null;
  samples: number;
}

export interface RssWindow {
  end(): RssWindowResult;
}

export function selfRss(): RssReader {
  return function readSelfRss() {
    return process.memoryUsage.rss();
  };
}

export function childRss(pid: number): RssReader {
  return statusField(pid, /^VmRSS:\s+(\d+)\s+kB/m);
}

/**
 * The anonymous part of a child's RSS (RssAnon: heaps, stacks, malloc arenas), without the
 * pages it maps from files: the Node binary's code and read-only data (~54 MiB of mailroute's
 * RSS under load, against ~30 MiB for a bare `node`), which the page cache holds once for every
 * process running that binary.
 */
export function childAnonRss(pid: number): RssReader {
  return statusField(pid, /^RssAnon:\s+(\d+)\s+kB/m);
}

function statusField(pid: number, field: RegExp): RssReader {
  const path = `/proc/${pid}/status`;
  return function readStatusField() {
    try {
      // in kB ("kB" in /proc means KiB)
      const match = field.exec(readFileSync(path, "latin1"));
      return match === null ? null : Number(match[1]) * 1024;
    } catch {
      return null;
    }
  };
}

/**
 * RSS of a process and all its descendants, summed (`mailroute start --processes n`: the
 * primary and its service processes). Each process counts its shared pages too, so the sum is
 * an upper bound of the memory the tree holds. `readerOf` reads one process (childAnonRss: the
 * anonymous parts summed).
 */
export function processTreeRss(pid: number, readerOf: (pid: number) => RssReader = childRss): RssReader {
  const own = (id: number) => readerOf(id)();
  return function readProcessTreeRss() {
    const root = own(pid);
    if (root === null) return null;
    return descendantProcesses(pid).reduce((total, id) => total + (own(id) ?? 0), root);
  };
}

/** A process's children, theirs, and so on (Linux's /proc/<pid>/task/<pid>/children); none where they cannot be read. */
export function descendantProcesses(pid: number): number[] {
  const childrenOf = (id: number): number[] => {
    try {
      return readFileSync(`/proc/${id}/task/${id}/children`, "latin1").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const found: number[] = [];
  const pending = childrenOf(pid);
  while (pending.length > 0) {
    const id = pending.pop()!;
    found.push(id);
    pending.push(...childrenOf(id));
  }
  return found;
}

interface OpenWindow {
  start: number | null;
  peak: number | null;
  samples: number;
}

export class RssSampler {
  readonly #read: RssReader;
  readonly #timer: NodeJS.Timeout;
  readonly #windows = new Set<OpenWindow>();

  constructor(read: RssReader, intervalMs = 50) {
    this.#read = read;
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    this.#timer.unref();
  }

  /** The RSS right now. */
  now(): number | null {
    return this.#read();
  }

  begin(): RssWindow {
    const start = this.#read();
    const window: OpenWindow = { start, peak: start, samples: 1 };
    this.#windows.add(window);
    return {
      end: () => {
        const end = this.#read();
        this.#windows.delete(window);
        return { startBytes: window.start, peakBytes: max(window.peak, end), endBytes: end, samples: window.samples + 1 };
      },
    };
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#windows.clear();
  }

  #sample(): void {
    if (this.#windows.size === 0) return;
    const value = this.#read();
    for (const window of this.#windows) {
      window.peak = max(window.peak, value);
      window.samples++;
    }
  }
}

function max(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}
