/**
 * A real HTTP server on a real unix socket that answers the control-socket API
 * (docs/FORMATS.md) the way a test scripts it: for the api client and prolog/epilog tests that
 * need a daemon that is slow, failing or in a given state.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { rm } from 'node:fs/promises';

export interface SeenRequest {
  method: string;
  url: string;
  body: unknown;
}

export type Handler = (req: SeenRequest, res: ServerResponse) => void | Promise<void>;

export interface StandInDaemon {
  socketPath: string;
  seen: SeenRequest[];
  handler: Handler;
  close(): Promise<void>;
}

export function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startStandIn(socketPath: string, handler: Handler): Promise<StandInDaemon> {
  await rm(socketPath, { force: true });
  const state: StandInDaemon = {
    socketPath,
    seen: [],
    handler,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      const seen = { method: req.method ?? '', url: req.url ?? '', body };
      state.seen.push(seen);
      Promise.resolve(state.handler(seen, res)).catch((err) => reply(res, 500, { error: { code: 'TEST', message: String(err) } }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return state;
}
