/**
 * SecretStore over files (one node, SQLite): `<root>/<name>`, directories 0700, files 0600,
 * exactly the layout mailroute has always used (`srs-secrets`, `dkim/<domain>/<selector>.rsa.pem`),
 * so existing installations keep their keys.
 *
 * Promises: a secret is written to a private temp file, fsync'd, then hard-linked into place;
 * link(2) fails with EEXIST rather than replace (rename would silently overwrite another
 * process's key, and the two would each sign with a different one), so concurrent first use
 * ends with one value, and a file is never seen half-written. A file others can read is
 * tightened to 0600 when it is read.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, tightenIfPresent, type OnTightened } from "../config/data-dir.ts";
import { checkSecretName, type SecretStore } from "./secret-store.ts";

export function fileSecretStore(root: string, onTightened?: OnTightened): SecretStore {
  return Object.freeze({
    getOrCreate: async function getOrCreateFile(name: string, generate: () => string | Promise<string>): Promise<string> {
      const path = join(root, checkSecretName(name));
      const existing = await readIfExists(path);
      if (existing !== null && existing.trim() !== "") {
        // a secret copied in by hand, or by an older version, may be readable by others
        tightenIfPresent(path, PRIVATE_FILE_MODE, onTightened);
        return existing;
      }
      await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
      return createExclusively(path, await generate());
    },
    locate: (name: string) => join(root, name),
  });
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`secret ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Publish `value` at `path` unless someone else already did; returns the value that is there now. */
async function createExclusively(path: string, value: string): Promise<string> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const file = await open(temp, "wx", PRIVATE_FILE_MODE);
  try {
    await file.writeFile(value);
    // on disk before it has a name: a crash must not leave an empty key that later looks valid
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await link(temp, path);
    return value;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`secret ${path}: ${(error as Error).message}`, { cause: error });
    const theirs = await readIfExists(path);
    if (theirs === null) throw new Error(`secret ${path}: vanished while being created`);
    return theirs;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
