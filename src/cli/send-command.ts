/**
 * `mailroute send`: sends one test message over real SMTP (nodemailer's SMTPConnection) and
 * prints every reply the server gave, so an operator sees exactly what a sender would.
 * Exit code 0 only when the message was accepted (250).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { envName } from "../config/settings.ts";
import { formatRfc5322Date } from "../delivery/trace-header.ts";
import { CliError, usageError } from "./cli-error.ts";
import { parseCommand, type LeafSpec } from "./command-spec.ts";
import type { Output } from "./command-output.ts";

export const SEND_SPEC: LeafSpec = {
  name: "send",
  summary: "send a test message through a running server",
  options: [
    ["--to <address>", "recipient (required)"],
    ["--from <address>", "sender (default mailroute-test@<this machine>)"],
    ["--server <host:port>", "default 127.0.0.1:2525 (or MAILROUTE_SMTP_PORT)"],
    ["--subject <text>", "the Subject header"],
    ["--body <text>", "the message text"],
  ],
  example: "mailroute send --to hello@example.com --server 127.0.0.1:2525",
};

const USAGE = "mailroute send [options]";

export function parseServer(spec: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec.trim());
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65535) throw usageError(`--server "${spec}" is not host:port (e.g. 127.0.0.1:2525)`, USAGE);
  return { host: match[1] ?? match[2]!, port };
}

export async function sendCommand(argv: string[], output: Output): Promise<void> {
  const { values } = parseCommand<{ to?: string; from?: string; server?: string; subject?: string; body?: string }>(SEND_SPEC, argv);
  const to = values.to;
  if (to === undefined || !to.includes("@")) throw usageError("--to <address> is required", USAGE);
  const from = values.from ?? `mailroute-test@${hostname()}`;
  const server = parseServer(values.server ?? `127.0.0.1:${process.env[envName("smtp-port")] ?? "2525"}`);
  const messageId = `<${Date.now()}.${randomBytes(6).toString("hex")}@mailroute.send>`;
  const message = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${values.subject ?? "mailroute test message"}`,
    `Date: ${formatRfc5322Date(new Date())}`,
    `Message-ID: ${messageId}`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "",
    values.body ?? "This is a test message sent by `mailroute send`.",
    "",
  ].join("\r\n");

  const connection = new SMTPConnection({ host: server.host, port: server.port, ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 300_000, name: "mailroute-send", logger: false } as never);
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once("error", reject);
      connection.connect(() => resolve());
    });
  } catch (error) {
    throw new CliError(`cannot connect to ${server.host}:${server.port}: ${(error as Error).message}`, { hint: "is mailroute running? start it with: npm start (or pass --server host:port)" });
  }
  try {
    const info = await new Promise<{ response?: string }>((resolve, reject) => {
      connection.send({ from, to: [to] }, message, (error: Error | null, result: { response?: string }) => (error ? reject(error) : resolve(result)));
    });
    output.out(`sent ${messageId} from <${from}> to <${to}> via ${server.host}:${server.port}`);
    output.out(`server replied: ${info.response ?? "250"}`);
  } catch (error) {
    const failure = error as Error & { response?: string; responseCode?: number };
    throw new CliError(`the server did not accept the message: ${failure.response ?? failure.message}`, {
      hint: (failure.responseCode ?? 0) >= 500 ? "see why with: mailroute route " + to : "a 4xx answer is temporary; a real sender would retry later",
    });
  } finally {
    connection.quit();
  }
}
