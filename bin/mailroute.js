#!/usr/bin/env node
// Launcher for the `mailroute` command. It runs the TypeScript entry point on the Node.js 24
// pinned by the `node` npm package (DESIGN §5): the machine's own node may be older and
// unable to run TypeScript. Plain JavaScript on purpose, so any Node can start it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVICE_ENVIRONMENT, SERVICE_NODE_FLAGS } from "./service-node-flags.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "src", "cli", "main.ts");
const pinned = [join(root, "node_modules", "node", "bin", "node"), join(root, "node_modules", ".bin", "node")].find((path) => existsSync(path));
const [major, minor] = process.versions.node.split(".").map(Number);
const currentCanRun = major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 19);
const runtime = pinned ?? (currentCanRun ? process.execPath : null);
if (runtime === null) {
  console.error(`mailroute needs Node.js >= 22.19 (this is ${process.version}); run "npm install" in ${root} to fetch the pinned runtime`);
  process.exit(1);
}
const flags = runtime === process.execPath && major === 22 ? ["--experimental-strip-types", "--no-warnings"] : [];
// the service's V8 flags (service-node-flags.js says why)
flags.push(...SERVICE_NODE_FLAGS);
// Files mailroute creates (database, -wal/-shm, keys, secrets) are private to its user; the
// child inherits the umask.
process.umask(0o077);
const child = spawn(runtime, [...flags, entry, ...process.argv.slice(2)], { stdio: "inherit", env: { ...SERVICE_ENVIRONMENT, ...process.env } });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
