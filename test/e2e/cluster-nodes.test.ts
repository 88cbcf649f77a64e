/**
 * Cluster mode (issue 13): three real nodes (startMailroute, as `mailroute start` runs them) on
 * one fresh PostgreSQL database, reached through a loopback TCP proxy that counts
 * config_version reads and can cut the network; a loopback DNS server; SMTP sinks for the
 * destination and for the original sender's domain.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dkimVerify } from "mailauth";
import { silentLogger } from "../../src/analytics/structured-log.ts";
import { CliError } from "../../src/cli/cli-error.ts";
import { doctorCommand } from "../../src/cli/doctor-command.ts";
import { startMailroute, type RunningMailroute } from "../../src/cli/start-service.ts";
import { clusterKeyId } from "../../src/config/cluster-key.ts";
import { loadSettings } from "../../src/config/settings.ts";
import { CLI_OPERATOR } from "../../src/core/service-context.ts";
import { createServices, type AccountServices } from "../../src/core/services.ts";
import { openStore, type Store } from "../../src/store/open-store.ts";
import { startDnsServer, type TestDnsServer } from "../support/dns-server.ts";
import { createTestDatabase, postgresServer, type TestDatabase } from "../support/postgres-database.ts";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.ts";
import { SmtpTestClient, testMessage } from "../support/smtp-test-client.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

const TOKEN = "test-admin-token";
const clusterKey = randomBytes(32).toString("base64");

let database: TestDatabase;
let proxy: TcpProxy;
let dns: TestDnsServer;
let destination: SmtpSink;
let origin: SmtpSink;
let config: AccountServices;
let configStore: Store;
const nodes: RunningMailroute[] = [];
const dataDirs: string[] = [];

function nodeSettings(name: string, key: string | null, dataDir?: string) {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), `mailroute-cluster-${name}-`));
  dataDirs.push(dir);
  return loadSettings(
    {
      "data-dir": dir,
      database: database.urlVia("127.0.0.1", proxy.port),
      "node-id": name,
      "smtp-port": "0",
      "http-port": "0",
      "admin-token": TOKEN,
      // one name for the installation: the EHLO name and the domain SRS addresses are minted at
      hostname: "mx.mailroute.test",
      "dns-servers": dns.address,
      "outbound-port": String(destination.port),
      "relay-timeout": "20000",
    },
    key === null ? {} : { MAILROUTE_CLUSTER_KEY: key },
  );
}

function startNode(name: string, key: string | null = clusterKey, dataDir?: string): Promise<RunningMailroute> {
  return startMailroute(nodeSettings(name, key, dataDir), {
    logger: silentLogger,
    client: { connectionTimeoutMs: 3000, greetingTimeoutMs: 3000, socketTimeoutMs: 5000 },
    closeTimeoutMs: 500,
  });
}

async function api(node: RunningMailroute, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${node.http.port}/client/v4${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await response.json()) as { success: boolean; result: unknown; errors: unknown };
  assert.equal(json.success, true, `${method} ${path}: ${JSON.stringify(json.errors)}`);
  return json.result;
}

async function dkimRecords(node: RunningMailroute, zoneId: string): Promise<Map<string, string>> {
  const records = (await api(node, "GET", `/zones/${zoneId}/email/routing/dns`)) as { type: string; name: string; content: string }[];
  return new Map(records.filter((record) => record.name.includes("._domainkey.")).map((record) => [record.name, record.content]));
}

async function rcpt(node: RunningMailroute, from: string, to: string) {
  const { client } = await SmtpTestClient.connect(node.smtp.port);
  try {
    return (await client.envelope(from, [to])).rcpts[0]!;
  } finally {
    await client.quit().catch(() => undefined);
  }
}

async function send(node: RunningMailroute, from: string, to: string) {
  const { client } = await SmtpTestClient.connect(node.smtp.port);
  try {
    const envelope = await client.envelope(from, [to]);
    assert.equal(envelope.rcpts[0]?.code, 250, envelope.rcpts[0]?.line);
    return await client.data(testMessage({ from: from === "" ? "mailer-daemon@elsewhere.test" : from, to }));
  } finally {
    await client.quit().catch(() => undefined);
  }
}

/** Polls `check` every 25 ms until it holds or `ms` pass; bounded in count and time. */
async function within(ms: number, check: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let round = 0; round < 1000; round++) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

let zoneId: string;

describe("three nodes on one PostgreSQL database", () => {
  before(async () => {
    database = await createTestDatabase();
    proxy = await startTcpProxy(postgresServer(), "config_version");
    dns = await startDnsServer();
    destination = await startSmtpSink({ host: "127.0.0.2" });
    origin = await startSmtpSink({ host: "127.0.0.3", port: destination.port });
    dns.setRecords("dest.test", "MX", [{ exchange: "mx.dest.test", priority: 10 }]);
    dns.setRecords("mx.dest.test", "A", ["127.0.0.2"]);
    dns.setRecords("origin.test", "MX", [{ exchange: "mx.origin.test", priority: 10 }]);
    dns.setRecords("mx.origin.test", "A", ["127.0.0.3"]);
    // started at once: they race to migrate and to create the shared SRS and secret-box keys
    nodes.push(...(await Promise.all([startNode("node-a"), startNode("node-b"), startNode("node-c")])));
    configStore = await openStore({ dataDir: "/nonexistent/unused-with-postgres", databaseUrl: database.url });
    config = createServices(configStore).forAccount({ account: "default", actor: CLI_OPERATOR });
    zoneId = (await config.zones.create("signed.example")).id;
    await config.addresses.create("alice@dest.test", { verified: true });
    await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "hello@signed.example" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    const [a, , c] = nodes;
    assert.ok(await within(2000, () => a!.routing.table.rules.size === 1 && c!.routing.table.rules.size === 1), "the nodes saw the rule");
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await configStore?.close();
    await Promise.all([destination?.stop(), origin?.stop(), dns?.stop(), proxy?.stop()]);
    await database?.drop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  it("publishes one DKIM key from every node, even when all three generate it at once", async () => {
    const [a, b, c] = nodes;
    const records = await Promise.all([a!, b!, c!].map((node) => dkimRecords(node, zoneId)));
    assert.ok(records[0]!.get("mailroute._domainkey.signed.example")?.startsWith("v=DKIM1; k=rsa; p="));
    assert.deepEqual(records[1], records[0]);
    assert.deepEqual(records[2], records[0]);
  });

  it("keeps the shared keys sealed: no PEM and no SRS secret in the database, every row under our key id", async () => {
    const rows = await configStore.db.selectFrom("cluster_secrets").selectAll().execute();
    assert.deepEqual(rows.map((row) => row.name).sort(), ["dkim/signed.example/mailroute.rsa.pem", "srs-secrets", "worker-secrets.key"]);
    for (const row of rows) {
      assert.equal(row.key_id, clusterKeyId(Buffer.from(clusterKey, "base64")));
      assert.doesNotMatch(Buffer.from(row.sealed, "base64url").toString("latin1"), /PRIVATE KEY/);
    }
  });

  it("a message relayed and signed by node A verifies with the DKIM record `mailroute doctor` prints on node C", async () => {
    const [a, , c] = nodes;
    destination.reset();
    const reply = await send(a!, "sender@origin.test", "hello@signed.example");
    assert.equal(reply.code, 250, reply.line);
    const [message] = destination.messagesFor("alice@dest.test");
    assert.ok(message, "the destination received the message");
    // doctor run with node C's settings: its own data directory, the shared database and key
    const keyFile = join(dataDirs[2]!, "cluster.key");
    writeFileSync(keyFile, `${clusterKey}\n`, { mode: 0o600 });
    const lines: string[] = [];
    await doctorCommand(["signed.example", "--json", "--data-dir", c!.settings.dataDir, "--database", database.url, "--cluster-key-file", keyFile, "--hostname", "mx.mailroute.test", "--dns-servers", dns.address], { out: (line) => lines.push(line) }).catch((error: unknown) => {
      // nothing is published in this DNS, so doctor reports records to publish; it printed them first
      if (!(error instanceof CliError)) throw error;
    });
    const printed = (JSON.parse(lines.join("\n")) as { type: string; name: string; value: string }[]).filter((record) => record.name.includes("._domainkey."));
    assert.equal(printed.length, 1, lines.join("\n"));
    const published = new Map(printed.map((record) => [record.name, record.value]));
    assert.deepEqual(published, await dkimRecords(c!, zoneId), "doctor prints what node C's DNS endpoint publishes");
    const resolver = async (name: string) => {
      const value = published.get(name.replace(/\.$/, ""));
      if (value === undefined) throw Object.assign(new Error(`no ${name}`), { code: "ENOTFOUND" });
      return [[value]];
    };
    const verdict = await dkimVerify(message.raw, { resolver: resolver as never });
    const ours = verdict.results.find((result) => result.signingDomain === "signed.example");
    assert.equal(ours?.status.result, "pass", JSON.stringify(verdict.results.map((result) => result.status)));
  });

  it("a bounce to an SRS address minted by node A is accepted at node C and returned to the original sender", async () => {
    const [a, , c] = nodes;
    destination.reset();
    origin.reset();
    assert.equal((await send(a!, "sender@origin.test", "hello@signed.example")).code, 250);
    const srsAddress = destination.messagesFor("alice@dest.test")[0]!.from;
    assert.match(srsAddress, /^SRS0=.+=origin\.test=sender@mx\.mailroute\.test$/);
    const reply = await send(c!, "", srsAddress);
    assert.equal(reply.code, 250, reply.line);
    assert.equal(origin.messagesFor("sender@origin.test").length, 1);
  });

  it("events and their node: the event of a message relayed by node A names node A", async () => {
    const [a] = nodes;
    destination.reset();
    assert.equal((await send(a!, "sender@origin.test", "hello@signed.example")).code, 250);
    assert.ok(
      await within(3000, async () => (await configStore.db.selectFrom("events").select("node_id").where("rcpt_to", "=", "hello@signed.example").execute()).some((row) => row.node_id === "node-a")),
      "an event with node_id node-a",
    );
  });

  it("a rule created through node A's API routes mail at node C within a second, and no node polls config_version", async () => {
    const [a, , c] = nodes;
    proxy.resetCount();
    // idle nodes: with the 250 ms polling of SQLite mode, three nodes would read it ~12 times here
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(proxy.count(), 0, "config_version read while nothing changed");
    await api(a!, "POST", `/zones/${zoneId}/email/routing/rules`, {
      matchers: [{ type: "literal", field: "to", value: "news@signed.example" }],
      actions: [{ type: "forward", value: ["alice@dest.test"] }],
      enabled: true,
    });
    assert.ok(await within(1000, () => c!.routing.table.rules.size === 2), "node C reloaded within a second");
    assert.equal((await rcpt(c!, "sender@origin.test", "news@signed.example")).code, 250);
    // the counter does see reads: each node read the version once, on the notification
    assert.ok(proxy.count() >= 1, `config_version reads after the change: ${proxy.count()}`);
  });

  it("refuses to start a node with another cluster key, naming both key ids", async () => {
    const other = randomBytes(32).toString("base64");
    await assert.rejects(startNode("node-wrong", other), (error: Error) => {
      assert.match(error.message, /wrong cluster key/);
      assert.ok(error.message.includes(clusterKeyId(Buffer.from(clusterKey, "base64"))) && error.message.includes(clusterKeyId(Buffer.from(other, "base64"))), error.message);
      return true;
    });
  });

  it("refuses to start a PostgreSQL node without a cluster key, saying how to make one", async () => {
    await assert.rejects(startNode("node-keyless", null), /cluster key[\s\S]*openssl rand -base64 32/);
  });

  it("answers 451 4.3.0 while the database is unreachable, and resynchronises after: a change made meanwhile routes", async () => {
    const [, , c] = nodes;
    proxy.cut();
    try {
      let reply = await rcpt(c!, "sender@origin.test", "hello@signed.example");
      assert.ok(await within(8000, async () => (reply = await rcpt(c!, "sender@origin.test", "hello@signed.example")).code === 451), "451 while cut off");
      assert.equal(reply.enhanced, "4.3.0");
      // made directly on the server, past the cut proxy: the node cannot be notified of it
      await config.rules.create({ matchers: [{ type: "literal", field: "to", value: "late@signed.example" }], actions: [{ type: "forward", value: ["alice@dest.test"] }] });
    } finally {
      proxy.restore();
    }
    assert.ok(await within(10_000, async () => (await rcpt(c!, "sender@origin.test", "late@signed.example")).code === 250), "routes the change made while away");
  });
});

describe("a single node moving to PostgreSQL", () => {
  it("imports its key files into the empty cluster, so its old SRS addresses keep working", async () => {
    database = await createTestDatabase();
    proxy = await startTcpProxy(postgresServer(), "config_version");
    dns = await startDnsServer();
    destination = await startSmtpSink({ host: "127.0.0.2" });
    const dir = mkdtempSync(join(tmpdir(), "mailroute-cluster-move-"));
    const secret = randomBytes(32).toString("base64url");
    writeFileSync(join(dir, "srs-secrets"), `${secret}\n`, { mode: 0o600 });
    const node = await startNode("node-moved", clusterKey, dir);
    try {
      const store = await openStore({ dataDir: dir, databaseUrl: database.url });
      try {
        const names = (await store.db.selectFrom("cluster_secrets").select("name").execute()).map((row) => row.name).sort();
        assert.deepEqual(names, ["srs-secrets", "worker-secrets.key"]);
      } finally {
        await store.close();
      }
      // the SRS secret is the file's: an address it minted before the move still opens
      const { SrsRewriter } = await import("../../src/delivery/srs-rewriter.ts");
      const before = new SrsRewriter({ secrets: [secret], domain: "mx.mailroute.test" }).forward("someone@origin.test");
      assert.equal(node.settings.hostname, "mx.mailroute.test");
      const reply = await rcpt(node, "", before);
      assert.equal(reply.code, 250, reply.line);
    } finally {
      await node.close();
      await Promise.all([destination.stop(), dns.stop(), proxy.stop()]);
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
