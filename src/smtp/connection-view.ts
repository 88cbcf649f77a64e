/**
 * A narrow, read-mostly view of one smtp-server connection, for the session deadlines: is the
 * server busy with this client (so the client is not on the clock), is DATA being received and
 * how much of it, and a way to answer with a catalogue reply and hang up.
 *
 * smtp-server exposes none of this, so this reads private fields of SMTPConnection and
 * SMTPStream (3.21.x: _handlerPending, _dataStream, _parser._dataMode, _parser.dataBytes).
 * smtp-server is pinned to that exact version; re-check these names when upgrading.
 */
import type { SMTPServer } from "./smtp-server-package.ts";
import type { SmtpReply } from "../mail/smtp-reply.ts";

export interface ConnectionView {
  /** The server owes this client an answer: a handler has not called back yet, or the message is in and onData has not decided. */
  busy(): boolean;
  /** DATA content is being received. */
  receivingData(): boolean;
  /** Message bytes received in the current DATA. */
  dataBytes(): number;
  /** Answers with `reply` and, for a 421, closes the connection. */
  reply(reply: SmtpReply): void;
}

interface ConnectionInternals {
  id: string;
  _handlerPending?: boolean;
  _dataStream?: unknown;
  _parser?: { _dataMode: boolean; dataBytes: number } | false;
  send(code: number, data: string): void;
}

function viewOf(connection: ConnectionInternals): ConnectionView {
  return {
    busy() {
      const parser = connection._parser;
      return connection._handlerPending === true || (Boolean(connection._dataStream) && parser !== undefined && parser !== false && !parser._dataMode);
    },
    receivingData() {
      const parser = connection._parser;
      return Boolean(connection._dataStream) && parser !== undefined && parser !== false && parser._dataMode;
    },
    dataBytes() {
      const parser = connection._parser;
      return parser ? parser.dataBytes : 0;
    },
    reply(reply) {
      connection.send(reply.responseCode, reply.message);
    },
  };
}

/** The connection whose session has this id, or null (not yet greeted, or gone). */
export function findConnection(server: SMTPServer, sessionId: string): ConnectionView | null {
  for (const connection of (server as unknown as { connections: Set<ConnectionInternals> }).connections) {
    if (connection.id === sessionId) return viewOf(connection);
  }
  return null;
}
