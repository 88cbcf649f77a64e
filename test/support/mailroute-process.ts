/**
 * A mailroute to kill: a child process running exactly what an operator runs
 * (`node src/cli/main.ts start --…`), restartable on the same data directory and ports after a
 * SIGKILL, as a supervisor (systemd, a container runtime) would. Used by the crash tests and
 * the soak (`npm run soak`).
 *
 * Promises: `kill()` sends SIGKILL to the current child and nothing else, and resolves once it
 * is gone; `start()` resolves when the new child answers SMTP with 220 (or throws naming why it
 * did not); `stop()` ends the child for good (SIGTERM, then SIGKILL after 5 s). Every JSON log
 * line the children print is kept in `logs`, so a run can count the ledger's own events.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "node:net";
import { join } from "node:path";

const REPO_ROOT = join(import.meta.dirname, "..", "..");
const CLI_ENTRY = join(REPO_ROOT, "src", "cli", "main.ts");

const READY_TIMEOUT_MS = 20_000;

export interface LogLine {
  event?: string;
  [field: string]: unknown;
}

export class MailrouteProcess {
  readonly #flags: readonly string[];
  readonly port: number;
  readonly logs: LogLine[] = [];
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #stderr = "";
  #ready = false;
  starts = 0;

  constructor(flags: Record<string, string>, port: number) {
    this.#flags = Object.entries({ ...flags, "smtp-port": String(port), "smtp-host": "127.0.0.1" }).flatMap(([name, value]) => [`--${name}`, value]);
    this.port = port;
  }

  /** True while a child is up and has greeted. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Lines the children printed on stdout that are not JSON log lines (the banner). */
  readonly printed: string[] = [];
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  /** How the current child ended (null while it runs): an exit code, or the signal that killed it. */
  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.#exit;
  }

  /** The current child's process id (undefined before the first launch). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    this.launch();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.#exit !== null) throw new Error(`mailroute exited (${describeExit(this.#exit)}) before answering SMTP: ${this.#stderr.trim() || "no output"}`);
      if (await greets(this.port)) {
        this.#ready = this.#exit === null;
        return;
      }
      await sleep(50);
    }
    throw new Error(`mailroute did not greet on 127.0.0.1:${this.port} within ${READY_TIMEOUT_MS} ms`);
  }

  /** Starts a child and returns at once, without waiting for it to serve (a test of its start). */
  launch(): void {
    // MAILROUTE_* from the caller's shell must not change what runs
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MAILROUTE_")));
    const child = spawn(process.execPath, [CLI_ENTRY, "start", ...this.#flags], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    this.starts++;
    let pending = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (text: string) => {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("{")) {
          this.printed.push(line);
          continue;
        }
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          // a line cut by SIGKILL
        }
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (text: string) => {
      this.#stderr = (this.#stderr + text).slice(-4000);
    });
    this.#exit = null;
    // if the test or soak dies on an uncaught error, its mailroute must not outlive it
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    this.#exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        process.off("exit", killOnExit);
        this.#ready = false;
        this.#exit = { code, signal };
        resolve();
      });
    });
  }

  /** What the current child printed on stderr last (up to 4,000 characters). */
  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves when the current child has exited, whoever ended it. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /**
   * SIGKILL now, synchronously (a sink hook calls this right after writing its 250): no
   * shutdown handler, no flush, as if the process had been cut off. False (and no kill) while
   * no child is serving: a kill during startup would test the supervisor, not the ledger.
   */
  killNow(): boolean {
    const child = this.#child;
    if (child === null || !this.#ready) return false;
    this.#ready = false;
    return child.kill("SIGKILL");
  }

  /** Sends `signal` to the current child (a test's own preloaded handler, say); false while none runs. */
  signal(signal: NodeJS.Signals): boolean {
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return false;
    return child.kill(signal);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, noDelay: true });
    let text = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 2000);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\r\n")) {
        socket.end("QUIT\r\n");
        done(text.startsWith("220"));
      }
    });
    socket.on("error", () => done(false));
  });
}
