/**
 * An HTTPS server on loopback playing `mta-sts.<domain>` hosts (RFC 8461 §3.3): answers
 * /.well-known/mta-sts.txt per Host header as told (a policy, an error status, or no answer
 * at all), and counts requests and connections.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TestLeaf } from "./test-ca.ts";

export interface PolicyAnswer {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Never answer (the fetch must time out). */
  stall?: boolean;
}

export interface PolicyHost {
  port: number;
  /** Answers by Host header; a host without one gets 404. */
  answers: Map<string, PolicyAnswer>;
  /** Requests per Host header. */
  requests: Map<string, number>;
  /** TCP connections, handshake failed or not. */
  connections: number;
  stop(): Promise<void>;
}

export async function startPolicyHost(leaf: TestLeaf): Promise<PolicyHost> {
  const answers = new Map<string, PolicyAnswer>();
  const requests = new Map<string, number>();
  const server: Server = createServer({ key: leaf.key, cert: leaf.cert }, (request, response) => {
    const host = (request.headers.host ?? "").toLowerCase();
    requests.set(host, (requests.get(host) ?? 0) + 1);
    const answer = answers.get(host);
    if (request.url !== "/.well-known/mta-sts.txt" || answer === undefined) {
      response.writeHead(404).end();
      return;
    }
    if (answer.stall) return;
    response.writeHead(answer.status ?? 200, { "content-type": "text/plain", ...answer.headers });
    response.end(answer.body ?? "");
  });
  let connections = 0;
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    answers,
    requests,
    get connections() {
      return connections;
    },
    set connections(value: number) {
      connections = value;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
