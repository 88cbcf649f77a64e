#!/usr/bin/env node
// Container/systemd health probe: GET /readyz on the local HTTP service; exit 0 when ready,
// 1 otherwise (with the failing checks on stderr). Plain JavaScript with no dependencies, so
// any Node.js runs it, and it needs no curl or wget in the image.
import { request } from "node:http";

const port = Number(process.env.MAILROUTE_HTTP_PORT ?? 8787);
const host = process.env.MAILROUTE_HEALTH_HOST ?? "127.0.0.1";
const req = request({ host, port, path: "/readyz", timeout: 4000 }, (res) => {
  let body = "";
  res.setEncoding("utf8");
  res.on("data", (chunk) => (body += chunk));
  res.on("end", () => {
    if (res.statusCode === 200) process.exit(0);
    console.error(`mailroute not ready (HTTP ${res.statusCode}): ${body}`);
    process.exit(1);
  });
});
req.on("timeout", () => req.destroy(new Error("timeout")));
req.on("error", (error) => {
  console.error(`mailroute health check: ${error.message}`);
  process.exit(1);
});
req.end();
