/**
 * A raw node:http(s) server for kube tests: each test scripts the exact bytes answered, and every
 * request is recorded. Real sockets on 127.0.0.1, nothing mocked.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
  /** n-th request (0-based) */
  n: number;
}

export type Handler = (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface ScriptServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  handler: Handler;
  /** Responses still open (watches), to end them from the test. */
  open: Set<ServerResponse>;
  close(): Promise<void>;
}

export async function startScriptServer(handler: Handler, tls?: HttpsOptions): Promise<ScriptServer> {
  const sockets = new Set<Socket>();
  const open = new Set<ServerResponse>();
  const requests: RecordedRequest[] = [];
  const state: ScriptServer = {
    url: '',
    port: 0,
    requests,
    handler,
    open,
    close: async () => {
      for (const res of open) res.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const listener = (raw: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const url = new URL(raw.url ?? '/', 'http://x');
      const rec: RecordedRequest = {
        method: raw.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: raw.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
        n: requests.length,
      };
      requests.push(rec);
      open.add(res);
      res.on('close', () => open.delete(res));
      Promise.resolve(state.handler(rec, res, raw)).catch((err) => {
        if (!res.headersSent) sendJson(res, 599, { error: String(err) });
        else res.destroy();
      });
    });
  };
  const server: Server = tls ? createHttpsServer(tls, listener) : createHttpServer(listener);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // TLS handshakes a client refuses show up here; they are expected in TLS tests.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as AddressInfo).port;
  state.url = `${tls ? 'https' : 'http'}://127.0.0.1:${state.port}`;
  return state;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function kubeStatus(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

/** Starts a chunked watch response. */
export function startWatch(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
}

export function eventLine(type: string, object: unknown): string {
  return JSON.stringify({ type, object }) + '\n';
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until cond() is true; rejects with `what` after timeoutMs. */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleepMs(5);
  }
}
