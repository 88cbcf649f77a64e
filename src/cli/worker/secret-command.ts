/**
 * `mailroute worker secret put|delete|list <name> …`: a worker's secrets through the account's
 * WorkerService (sealed at rest; the audit names the secret, never its value).
 *
 * Promises: a value is read from stdin (without echo on a terminal), never from the command
 * line (it would stay in shell history), and never printed or logged.
 */
import type { ReadStream } from "node:tty";
import { CliError, usageError } from "../cli-error.ts";
import { emit, need, USAGE, withWorkerServices, type Context, type WorkerCommandIo } from "./worker-cli-context.ts";

export async function secretCommand(context: Context): Promise<void> {
  const action = need(context, 1, "secret action (put, delete or list)");
  const name = need(context, 2, "worker name");
  await withWorkerServices(context, async (services) => {
    switch (action) {
      case "put": {
        const key = need(context, 3, "secret name");
        if (context.positionals.length > 4) throw usageError("a secret value is read from stdin, never from the command line (it would stay in shell history)", USAGE);
        const value = await readSecretValue(context.io, `Enter a secret value for ${key}: `);
        if (value === "") throw new CliError("the secret value is empty", { hint: `echo -n "$VALUE" | mailroute worker secret put ${name} ${key}` });
        const result = await services.workers.putSecret(name, key, value);
        emit(context, { worker: name.toLowerCase(), secret: key, replaced: result.replaced, version: result.version }, [`${result.replaced ? "replaced" : "added"} secret ${key} of worker ${name.toLowerCase()} (version ${result.version.slice(0, 12)})`]);
        return;
      }
      case "delete": {
        const key = need(context, 3, "secret name");
        const result = await services.workers.deleteSecret(name, key);
        emit(context, { worker: name.toLowerCase(), secret: key, version: result.version }, [`deleted secret ${key} of worker ${name.toLowerCase()}`]);
        return;
      }
      case "list": {
        const names = await services.workers.secretNames(name);
        emit(context, names.map((key) => ({ name: key, type: "secret_text" })), names.length === 0 ? [`worker ${name.toLowerCase()} has no secrets`] : names);
        return;
      }
      default:
        throw usageError(`unknown secret action "${action}" (put, delete or list)`, USAGE);
    }
  });
}

async function readSecretValue(io: WorkerCommandIo, prompt: string): Promise<string> {
  const stdin = io.stdin ?? process.stdin;
  if (stdin.isTTY === true && "setRawMode" in stdin) return readHidden(stdin as unknown as ReadStream, prompt);
  // Piped: everything, less the one newline `echo` adds.
  return (await readAll(stdin)).toString("utf8").replace(/\r?\n$/, "");
}

/** Reads a line from the terminal without echoing it. */
function readHidden(tty: ReadStream, prompt: string): Promise<string> {
  process.stderr.write(prompt);
  tty.setRawMode(true);
  tty.resume();
  return new Promise((resolvePromise, reject) => {
    let value = "";
    const finish = (error?: Error): void => {
      tty.off("data", onData);
      tty.setRawMode(false);
      tty.pause();
      process.stderr.write("\n");
      if (error === undefined) resolvePromise(value);
      else reject(error);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const char of chunk.toString()) {
        if (char === "\r" || char === "\n" || char === "\u0004") return finish();
        if (char === "\u0003") return finish(new CliError("cancelled"));
        if (char === "\u007f" || char === "\b") value = value.slice(0, -1);
        else value += char;
      }
    };
    tty.on("data", onData);
  });
}

export async function readAll(stream: AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

