/**
 * One HTTP/1.1 request and its response over nnf-envd's unix socket, on node:net alone. Why
 * not node:http: the prolog runs on every node of every job, and node:http (agent, client,
 * parser, incoming/outgoing messages) costs about 12 million instructions to load and use,
 * some 15 % of what `nnf-env prolog` adds to starting Node (BENCHMARKS.md, Flux cost). The
 * daemon's server is node:http; this side needs only a fixed request and a status + body:
 *
 * - the request always says `Connection: close`, so that the response ends the connection;
 * - the body is delimited by Content-Length (what nnf-envd sends), by chunked encoding, or
 *   else by the end of the connection, as HTTP/1.1 allows for a response that closes;
 * - anything else (no status line, a malformed header or chunk, more than MAX_RESPONSE_BYTES)
 *   is an error naming what was wrong; a connection that ends early is ECONNRESET, the code
 *   node:http gives the same failure.
 */
import { createConnection } from 'node:net';

/** No answer of nnf-envd comes near this (a list of 10,000 jobs is ~20 MiB). */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface SocketHttpAnswer {
  status: number;
  body: Buffer;
}

export class SocketHttpError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface SocketHttpRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | number>>;
  body?: string;
}

/**
 * Sends the request and resolves with the response; rejects with the socket's error (ENOENT,
 * ECONNREFUSED, EACCES...) or a SocketHttpError. `abort()` on the returned handle destroys the
 * connection (the caller's timeout and signal).
 */
export function socketHttp(socketPath: string, req: SocketHttpRequest): { answer: Promise<SocketHttpAnswer>; abort: () => void } {
  const socket = createConnection(socketPath);
  const answer = new Promise<SocketHttpAnswer>((resolve, reject) => {
    let settled = false;
    const done = (err: Error | null, a?: SocketHttpAnswer) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(a as SocketHttpAnswer);
    };
    const parser = new ResponseParser();
    socket.on('data', (chunk: Buffer) => {
      try {
        const a = parser.push(chunk);
        if (a) done(null, a);
      } catch (err) {
        done(err as Error);
      }
    });
    socket.on('end', () => {
      try {
        done(null, parser.end());
      } catch (err) {
        done(err as Error);
      }
    });
    socket.on('error', (err) => done(err));
    socket.on('close', () => done(new SocketHttpError('ECONNRESET', 'socket hang up')));
  });
  const head = [`${req.method} ${req.path} HTTP/1.1`, 'host: localhost', 'connection: close'];
  for (const [name, value] of Object.entries(req.headers)) head.push(`${name}: ${value}`);
  // write, not end: node:http's server takes a half-closed request for an aborted one.
  socket.write(head.join('\r\n') + '\r\n\r\n' + (req.body ?? ''));
  return { answer, abort: () => socket.destroy() };
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;

/** Incremental response parser (exported for its tests): push() each chunk, end() at EOF. */
export class ResponseParser {
  private chunks: Buffer[] = [];
  private size = 0;
  private status = 0;
  private bodyStart = -1;
  private contentLength: number | undefined;
  private chunked = false;

  /** The complete answer once the body is complete, else undefined. */
  push(chunk: Buffer): SocketHttpAnswer | undefined {
    this.size += chunk.length;
    if (this.size > MAX_RESPONSE_BYTES) throw new SocketHttpError('BAD_RESPONSE', `response larger than ${MAX_RESPONSE_BYTES} bytes`);
    this.chunks.push(chunk);
    if (this.bodyStart < 0 && !this.readHead(this.joined())) return undefined;
    // Join the chunks only when the body can be complete: a large answer (a long job list)
    // arrives in many chunks, and joining at each one would copy it over and over.
    if (!this.mayBeComplete()) return undefined;
    return this.complete(this.joined(), false);
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private mayBeComplete(): boolean {
    if (this.chunked) return this.endsWithBlankLine(); // a chunked message ends with CRLF CRLF
    if (this.status === 204 || this.status === 304) return true;
    return this.contentLength !== undefined && this.size - this.bodyStart >= this.contentLength;
  }

  private endsWithBlankLine(): boolean {
    const tail: number[] = [];
    for (let i = this.chunks.length - 1; i >= 0 && tail.length < 4; i--) {
      const c = this.chunks[i]!;
      for (let j = c.length - 1; j >= 0 && tail.length < 4; j--) tail.unshift(c[j]!);
    }
    return tail.length === 4 && tail[0] === 0x0d && tail[1] === 0x0a && tail[2] === 0x0d && tail[3] === 0x0a;
  }

  /** The answer at the end of the connection (a body delimited by it), or an error. */
  end(): SocketHttpAnswer {
    const all = this.joined();
    if (this.bodyStart < 0) {
      throw new SocketHttpError('ECONNRESET', all.length === 0 ? 'socket hang up (no response)' : 'connection closed inside the response headers');
    }
    const a = this.complete(all, true);
    if (!a) throw new SocketHttpError('ECONNRESET', 'connection closed before the end of the response body');
    return a;
  }

  private readHead(all: Buffer): boolean {
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (all.length > 64 * 1024) throw new SocketHttpError('BAD_RESPONSE', 'response headers longer than 64 KiB');
      return false;
    }
    const lines = all.toString('latin1', 0, end).split('\r\n');
    const status = STATUS_LINE.exec(lines[0] ?? '');
    if (!status) throw new SocketHttpError('BAD_RESPONSE', `not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    this.status = Number(status[1]);
    for (const line of lines.slice(1)) {
      const h = HEADER_LINE.exec(line);
      if (!h) throw new SocketHttpError('BAD_RESPONSE', `malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = h[1]!.toLowerCase();
      const value = h[2]!;
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (this.contentLength !== undefined && this.contentLength !== Number(value))) {
          throw new SocketHttpError('BAD_RESPONSE', `bad content-length ${JSON.stringify(value)}`);
        }
        this.contentLength = Number(value);
      } else if (name === 'transfer-encoding') {
        if (value.toLowerCase() !== 'chunked') throw new SocketHttpError('BAD_RESPONSE', `unsupported transfer-encoding ${JSON.stringify(value)}`);
        this.chunked = true;
      }
    }
    if (this.status >= 100 && this.status < 200) throw new SocketHttpError('BAD_RESPONSE', `unexpected interim response ${this.status}`);
    this.bodyStart = end + 4;
    return true;
  }

  private complete(all: Buffer, atEof: boolean): SocketHttpAnswer | undefined {
    const body = all.subarray(this.bodyStart);
    if (this.chunked) {
      const decoded = decodeChunked(body);
      return decoded === undefined ? undefined : { status: this.status, body: decoded };
    }
    // 204 and 304 have no body whatever the headers say.
    if (this.status === 204 || this.status === 304) return { status: this.status, body: Buffer.alloc(0) };
    if (this.contentLength !== undefined) {
      if (body.length < this.contentLength) return undefined;
      return { status: this.status, body: body.subarray(0, this.contentLength) };
    }
    return atEof ? { status: this.status, body } : undefined;
  }
}

/** The body of a complete chunked message, or undefined while more is needed. */
function decodeChunked(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const sizeText = data.toString('latin1', at, lineEnd).split(';')[0]!.trim();
    if (!/^[0-9A-Fa-f]{1,8}$/.test(sizeText)) throw new SocketHttpError('BAD_RESPONSE', `bad chunk size ${JSON.stringify(sizeText.slice(0, 20))}`);
    const size = parseInt(sizeText, 16);
    const start = lineEnd + 2;
    if (size === 0) {
      // Trailers (none expected) end with an empty line.
      return data.indexOf('\r\n', start) < 0 ? undefined : Buffer.concat(parts);
    }
    if (data.length < start + size + 2) return undefined;
    if (data[start + size] !== 0x0d || data[start + size + 1] !== 0x0a) throw new SocketHttpError('BAD_RESPONSE', 'chunk not followed by CRLF');
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}
