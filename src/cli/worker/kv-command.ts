/**
 * `mailroute worker kv put|get|list|delete <namespace> …`: an account's Workers KV through its
 * KvService: Cloudflare's limits and error texts (those a worker sees), and each write or delete
 * audited with the namespace and key, never the value.
 */
import { KvError, kvPutExpiration } from "../../core/kv/kv-namespaces.ts";
import { CliError, usageError } from "../cli-error.ts";
import { readAll } from "./secret-command.ts";
import { emit, need, table, USAGE, withWorkerServices, type Context } from "./worker-cli-context.ts";

export async function kvCommand(context: Context): Promise<void> {
  const action = need(context, 1, "KV action (put, get, list or delete)");
  const namespace = need(context, 2, "namespace id");
  const { values } = context;
  await withWorkerServices(context, async (services) => {
    const kvStore = services.kv;
    try {
      switch (action) {
        case "put": {
          const key = need(context, 3, "key");
          const given = context.positionals[4];
          const value = given === undefined || given === "-" ? await readAll(context.io.stdin ?? process.stdin) : Buffer.from(given, "utf8");
          const expiration = kvPutExpiration({ expirationTtl: values.ttl as string | undefined, expiration: values.expiration as string | undefined }, Date.now());
          const metadata = values.metadata === undefined ? undefined : parseMetadata(values.metadata as string);
          await kvStore.put(namespace, key, value, { expiration, metadata });
          emit(context, { namespace, key, bytes: value.byteLength, expiration: expiration ?? null }, [`wrote ${key} (${value.byteLength} bytes) to KV namespace ${namespace}${expiration === undefined ? "" : `, expiring ${new Date(expiration * 1000).toISOString()}`}`]);
          return;
        }
        case "get": {
          const key = need(context, 3, "key");
          const entry = await kvStore.get(namespace, key);
          if (entry === null) throw new CliError(`KV namespace ${namespace} has no key "${key}" (or it has expired)`, { hint: `mailroute worker kv list ${namespace}` });
          const text = Buffer.from(entry.value).toString("utf8");
          emit(context, { namespace, key, value: text, metadata: entry.metadata }, [text]);
          return;
        }
        case "list": {
          const limit = values.limit === undefined ? undefined : Number(values.limit);
          const result = await kvStore.list(namespace, { prefix: values.prefix as string | undefined, limit, cursor: values.cursor as string | undefined });
          emit(context, result, [
            ...(result.keys.length === 0 ? [`no keys${values.prefix === undefined ? "" : ` starting with "${values.prefix}"`} in KV namespace ${namespace}`] : table([["KEY", "EXPIRES", "METADATA"], ...result.keys.map((k) => [k.name, k.expiration === undefined ? "" : new Date(k.expiration * 1000).toISOString(), k.metadata === undefined ? "" : JSON.stringify(k.metadata)])])),
            ...(result.list_complete ? [] : [`more keys: --cursor ${result.cursor}`]),
          ]);
          return;
        }
        case "delete": {
          const key = need(context, 3, "key");
          await kvStore.delete(namespace, key);
          emit(context, { namespace, key }, [`deleted ${key} from KV namespace ${namespace}`]);
          return;
        }
        default:
          throw usageError(`unknown kv action "${action}" (put, get, list or delete)`, USAGE);
      }
    } catch (error) {
      if (error instanceof KvError) throw new CliError(error.message);
      throw error;
    }
  });
}

function parseMetadata(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw usageError(`--metadata is not JSON: ${(error as Error).message}`, USAGE);
  }
}

