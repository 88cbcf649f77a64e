/**
 * `mailroute dev-sink`: a throwaway mailbox server for trying mailroute on one machine (the
 * walkthrough routes a destination domain to it with --transport). It accepts everything,
 * prints one line per message and can save each message as an .eml file. Not for production:
 * it stores nothing unless asked and authenticates no one.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SMTPServer } from "../smtp/smtp-server-package.ts";
import { readHeaderFields } from "../delivery/header-block.ts";
import { usageError } from "./cli-error.ts";
import { parseCommand, type LeafSpec } from "./command-spec.ts";
import type { Output } from "./command-output.ts";

export const SINK_SPEC: LeafSpec = {
  name: "dev-sink",
  summary: "a local catch-everything mailbox for trying mailroute out",
  options: [
    ["--port <port>", "SMTP port to listen on", { default: "2526" }],
    ["--host <host>", "address to listen on", { default: "127.0.0.1" }],
    ["--save-dir <dir>", "write each message as a file"],
  ],
  example: "mailroute dev-sink --port 2526",
};

export async function sinkCommand(argv: string[], output: Output): Promise<void> {
  const { values, usage } = parseCommand<{ port: string; host: string; saveDir?: string }>(SINK_SPEC, argv);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw usageError(`--port "${values.port}" is not a port number`, usage);
  const saveDir = values.saveDir;
  if (saveDir !== undefined) mkdirSync(saveDir, { recursive: true });
  let count = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    size: 64 * 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks);
        const headers = readHeaderFields(raw.subarray(0, 64 * 1024));
        count++;
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
        const to = session.envelope.rcptTo.map((rcpt) => rcpt.address).join(", ");
        let saved = "";
        if (saveDir !== undefined) {
          const file = join(saveDir, `${Date.now()}-${count}.eml`);
          writeFileSync(file, raw);
          saved = ` saved ${file}`;
        }
        output.out(`received #${count} from <${from}> to <${to}> subject "${headers.subject ?? ""}" (${raw.length} bytes)${saved}`);
        callback(null, "2.0.0 Ok: received by mailroute dev-sink");
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, values.host, () => resolve());
  });
  output.out(`dev-sink listening on ${values.host}:${port}; press Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
