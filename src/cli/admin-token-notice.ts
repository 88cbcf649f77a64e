/**
 * Where a newly generated admin token is shown (issue 8, item 5). stdout is the structured log
 * stream (journald, log shipping), so the token never goes there: it is written to the
 * operator's terminal when stderr is one, and otherwise to `<data-dir>/admin-token` (mode 0600,
 * readable only by the user mailroute runs as), which the log line names without quoting.
 *
 * Promises: the token appears in exactly one place; the file is written whole (a temporary file
 * renamed into place) and never with looser permissions than 0600.
 */
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../analytics/structured-log.ts";

export const ADMIN_TOKEN_FILE_NAME = "admin-token";

export interface TokenTerminal {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export type TokenNotice = { shown: "terminal" } | { shown: "file"; file: string };

export function announceGeneratedToken(token: string, options: { terminal: TokenTerminal; dataDir: string; logger: Logger }): TokenNotice {
  if (options.terminal.isTTY === true) {
    options.terminal.write(
      `\nadmin token (shown once, stored only as a hash): ${token}\n` +
        `keep it in a file readable only by you and start with --admin-token-file <file> (or MAILROUTE_ADMIN_TOKEN)\n\n`,
    );
    options.logger.log("info", "admin_token_generated", { shown: "terminal" });
    return { shown: "terminal" };
  }
  const file = join(options.dataDir, ADMIN_TOKEN_FILE_NAME);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  writeFileSync(temporary, `${token}\n`, { mode: 0o600, flag: "wx" });
  // the umask can only remove bits, but say it anyway: this file is a credential
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
  options.logger.log("warn", "admin_token_generated", { shown: "file", file, hint: `read it once, then pass --admin-token-file ${file}` });
  return { shown: "file", file };
}
