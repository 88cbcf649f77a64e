/**
 * Lets a GreetPause (greet-pause.ts) decide smtp-server's pause before the 220 greeting, which
 * smtp-server 3.21.x hard-codes to 100 ms for every connection in SMTPConnection#init. This
 * replaces init once (smtp-server is pinned exactly: re-check when upgrading); a server without
 * a registered GreetPause keeps smtp-server's own behaviour.
 */
import { SMTPConnection } from "./smtp-server-package.ts";
import type { SMTPServer } from "./smtp-server-package.ts";
import type { GreetPause } from "./greet-pause.ts";

const PAUSES = Symbol.for("mailroute.greet-pauses");

interface ConnectionInternals {
  _server: { options: { maxClients?: number }; connections: Set<unknown> };
  _closing: boolean;
  _closed: boolean;
  name: string;
  remoteAddress: string;
  _socket: NodeJS.EventEmitter;
  init(): void;
  connectionReady(): void;
  send(code: number, data: string, context?: unknown): void;
  _setListeners(callback: () => void): void;
}

export function installGreetPause(server: SMTPServer, pause: GreetPause): void {
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals & { [PAUSES]?: WeakMap<object, GreetPause> };
  let registry = proto[PAUSES];
  if (registry === undefined) {
    const pauses = new WeakMap<object, GreetPause>();
    registry = pauses;
    proto[PAUSES] = pauses;
    const original = proto.init;
    proto.init = function init(this: ConnectionInternals): void {
      const policy = pauses.get(this._server);
      if (policy === undefined) return original.call(this);
      this._setListeners(() => {
        // smtp-server's own check, kept as it is in the init this replaces
        const { maxClients } = this._server.options;
        if (maxClients && this._server.connections.size > maxClients) {
          return this.send(421, this.name + " Too many connected clients, try again in a moment", false);
        }
        // remoteAddress is the client's own here, after a PROXY header if one was expected
        const address = this.remoteAddress;
        const ms = policy.pauseFor(address);
        if (ms === 0) return this.connectionReady();
        // any byte before the greeting is early talk (smtp-server answers it 421 and closes)
        let talkedEarly = false;
        const heard = () => {
          talkedEarly = true;
        };
        const socket = this._socket;
        socket.once("data", heard);
        const timer = setTimeout(() => {
          socket.off("data", heard);
          if (talkedEarly) policy.settle(address, true);
          // a client gone by itself is not judged either way
          if (this._closing || this._closed) return;
          policy.settle(address, false);
          this.connectionReady();
        }, ms);
        // as smtp-server does: a pending greeting never holds the process open
        timer.unref();
      });
    };
  }
  registry.set(server, pause);
}
