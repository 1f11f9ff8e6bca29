/**
 * A deliberately plain HTTP client for the simulator tests (node:http/https, no keep-alive),
 * so the tests check the wire format themselves instead of trusting src/kube.
 */
import http from 'node:http';
import https from 'node:https';

export interface Conn {
  url: string;
  caPem?: string;
  token?: string;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface CallOptions {
  body?: unknown;
  contentType?: string;
  accept?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

function requestOptions(c: Conn, method: string, headers: Record<string, string>): https.RequestOptions {
  const h: Record<string, string> = { ...headers };
  if (c.token !== undefined && h.Authorization === undefined) h.Authorization = `Bearer ${c.token}`;
  return { method, headers: h, agent: false, ...(c.caPem ? { ca: c.caPem } : {}) };
}

function lib(url: string): typeof https | typeof http {
  return url.startsWith('https:') ? https : http;
}

export function call(c: Conn, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.accept) headers.Accept = opts.accept;
  let payload: string | undefined;
  if (opts.body !== undefined) {
    payload = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType ?? 'application/json';
    // node's client sends a DELETE body neither chunked nor sized unless told the length.
    headers['Content-Length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = lib(c.url).request(new URL(path, c.url), requestOptions(c, method, headers), (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`request timed out: ${method} ${path}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface WatchEventJson {
  type: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  object: any;
}

/** A watch stream: events parsed line by line as they arrive. */
export class WatchStream {
  readonly events: WatchEventJson[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  /** Resolves when the server ends the stream ('end') or it breaks ('error'). */
  readonly done: Promise<'end' | 'error'>;
  private consumed = 0;
  private waiters: Array<() => void> = [];
  private req: http.ClientRequest;
  private finished = false;
  bytes = 0;

  constructor(c: Conn, path: string, accept?: string) {
    let settle!: (v: 'end' | 'error') => void;
    this.done = new Promise((r) => (settle = r));
    const finish = (v: 'end' | 'error') => {
      if (this.finished) return;
      this.finished = true;
      settle(v);
      this.wake();
    };
    this.req = lib(c.url).request(new URL(path, c.url), requestOptions(c, 'GET', accept ? { Accept: accept } : {}), (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        this.bytes += d.length;
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) this.events.push(JSON.parse(line) as WatchEventJson);
        }
        this.wake();
      });
      res.on('end', () => finish('end'));
      res.on('error', () => finish('error'));
      res.on('close', () => finish(res.complete ? 'end' : 'error'));
    });
    this.req.on('error', () => finish('error'));
    this.req.end();
  }

  get ended(): boolean {
    return this.finished;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next unread event; rejects after `timeoutMs` or when the stream ends first. */
  async next(timeoutMs = 5000): Promise<WatchEventJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.consumed < this.events.length) return this.events[this.consumed++]!;
      if (this.finished) throw new Error(`watch ended after ${this.events.length} events`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no watch event within ${timeoutMs} ms (got ${this.events.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Skip events until one satisfies `pred`. */
  async until(pred: (e: WatchEventJson) => boolean, timeoutMs = 5000): Promise<WatchEventJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = await this.next(Math.max(1, deadline - Date.now()));
      if (pred(e)) return e;
    }
  }

  /** Events not yet read by next(), without waiting. */
  pending(): WatchEventJson[] {
    return this.events.slice(this.consumed);
  }

  close(): void {
    this.req.destroy();
  }
}

export function openWatch(c: Conn, path: string, accept?: string): WatchStream {
  return new WatchStream(c, path, accept);
}

export { eventually as waitFor } from '../helpers/eventually.js';

export const WF = '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows';
export const WF6 = '/apis/dataworkflowservices.github.io/v1alpha6/namespaces/default/workflows';
