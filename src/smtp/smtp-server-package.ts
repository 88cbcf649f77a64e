/**
 * smtp-server, loaded once and from its CommonJS build, for every module of ours that uses or
 * patches it (inbound-server.ts, the *-shim.ts modules, `mailroute sink`), and for the tests that
 * drive those shims.
 *
 * Why not its ES module build: that build imports nodemailer 10's ES build, whose fetch module
 * does `import http from "node:http"`; importing node:http as an ES module makes Node read every
 * export of it, and its WebSocket, CloseEvent and MessageEvent getters load Node's bundled
 * fetch implementation (undici, 745 KB of source): +13 MiB of RSS in an SMTP process that never
 * fetches (issue 11). The CommonJS build requires node:http, which leaves those getters unread.
 * One build for everyone: the shims must patch the prototypes of the classes SMTPServer runs.
 */
import { createRequire } from "node:module";
import type * as ServerModule from "smtp-server";
import type * as ConnectionModule from "smtp-server/lib/smtp-connection.js";
import type * as StreamModule from "smtp-server/lib/smtp-stream.js";

const require = createRequire(import.meta.url);

export const { SMTPServer } = require("smtp-server") as typeof ServerModule;
export type SMTPServer = ServerModule.SMTPServer;
export const { SMTPConnection } = require("smtp-server/lib/smtp-connection.js") as typeof ConnectionModule;
export type SMTPConnection = ConnectionModule.SMTPConnection;
export const { SMTPStream } = require("smtp-server/lib/smtp-stream.js") as typeof StreamModule;
export type SMTPStream = StreamModule.SMTPStream;
export type { SMTPServerAddress, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from "smtp-server";
