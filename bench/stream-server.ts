/**
 * A special-purpose API server for the watch throughput benchmark. It speaks the same list and
 * watch protocol as the simulator (and kube-apiserver) for one collection, but its watch body is
 * pre-generated: the first watch gets the whole buffer of event lines as fast as the socket
 * takes it, so the figure is the consumer's, not the server's JSON serialisation. Later watches
 * (a consumer reconnecting) stay open and silent.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KubeObject } from '../src/kube/resource.js';

export interface StreamServerOptions {
  /** The collection's path, e.g. /apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows */
  path: string;
  listKind: string;
  apiVersion: string;
  items: KubeObject[];
  listResourceVersion: string;
  /** Watch event lines, newline-terminated. */
  payload: Buffer;
  /** Serve HTTPS with this key and certificate (API servers always do; client-node refuses plain HTTP). */
  tls?: { keyPem: string; certPem: string };
}

export interface StreamServer {
  url: string;
  stats: { lists: number; watches: number; bytesStreamed: number; otherRequests: number };
  close(): Promise<void>;
}

const CHUNK = 64 * 1024;

export async function startStreamServer(opts: StreamServerOptions): Promise<StreamServer> {
  const stats = { lists: 0, watches: 0, bytesStreamed: 0, otherRequests: 0 };
  const listBody = Buffer.from(JSON.stringify({ kind: opts.listKind, apiVersion: opts.apiVersion, metadata: { resourceVersion: opts.listResourceVersion }, items: opts.items }));
  const open = new Set<http.ServerResponse>();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    req.resume();
    if (req.method !== 'GET' || url.pathname !== opts.path) {
      stats.otherRequests++;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound', message: 'not served by the stream server' }));
      return;
    }
    const watch = url.searchParams.get('watch');
    if (watch !== '1' && watch !== 'true') {
      stats.lists++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': listBody.length });
      res.end(listBody);
      return;
    }
    stats.watches++;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    open.add(res);
    res.on('close', () => open.delete(res));
    if (stats.watches > 1) return; // reconnects: silent
    let i = 0;
    const pump = (): void => {
      while (i < opts.payload.length) {
        const chunk = opts.payload.subarray(i, i + CHUNK);
        i += chunk.length;
        stats.bytesStreamed += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };
  const server = opts.tls ? https.createServer({ key: opts.tls.keyPem, cert: opts.tls.certPem }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    stats,
    async close() {
      for (const r of open) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
