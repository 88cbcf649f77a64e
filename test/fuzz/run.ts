/**
 * `npm run fuzz`: the SMTP fuzz suite (smtp-fuzzer.ts). Prints its figures and exits 1 if any
 * check failed. Flags: --seconds N (default 120), --rounds N (default 10,000), --concurrency N
 * (connections per round, default 8), --seed N (replay a run), --rss-limit MiB (default 400).
 */
import { parseArgs } from "node:util";
import { runFuzz } from "./smtp-fuzzer.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "120" },
    rounds: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "8" },
    seed: { type: "string" },
    "rss-limit": { type: "string", default: "400" },
  },
});

function whole(name: string, text: string | undefined, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    process.stderr.write(`fuzz: --${name} "${text}" is not a whole number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return value;
}

const report = await runFuzz({
  seconds: whole("seconds", values.seconds, 1, 86_400),
  maxRounds: whole("rounds", values.rounds, 1, 10_000_000),
  concurrency: whole("concurrency", values.concurrency, 1, 200),
  seed: values.seed === undefined ? undefined : whole("seed", values.seed, 0, 2 ** 31),
  rssLimitMb: whole("rss-limit", values["rss-limit"], 16, 65_536),
  progress: (line) => process.stderr.write(`fuzz: ${line}\n`),
});

const rows: [string, string][] = [
  ["seed", String(report.seed)],
  ["rounds", String(report.rounds)],
  ["inputs", `${report.inputs} (${Object.entries(report.inputsByKind).map(([kind, count]) => `${kind} ${count}`).join(", ")})`],
  ["bytes sent", `${(report.bytesSent / 1024 / 1024).toFixed(1)} MiB`],
  ["control messages delivered", `${report.controlMessages} of ${report.rounds}`],
  ["RSS baseline / peak", `${report.baselineRssMb} / ${report.peakRssMb} MiB`],
  ["duration", `${(report.durationMs / 1000).toFixed(1)} s`],
  ["failures", String(report.failures.length)],
];
process.stdout.write(`${rows.map(([name, value]) => `${name.padEnd(28)} ${value}`).join("\n")}\n`);
for (const failure of report.failures) process.stdout.write(`FAIL ${failure}\n`);
process.exit(report.failures.length === 0 ? 0 : 1);
