/**
 * A TCP proxy on 127.0.0.1 in front of an API server: counts the bytes the server sends to
 * clients and the connections they hold (the fan-out benchmark), and plays a server restart
 * (the chaos suites): `outage(ms)` cuts every connection and refuses new ones for a while, on
 * the same port, while the server's store stays (as etcd keeps its data across an
 * kube-apiserver restart).
 */
import net from 'node:net';

export interface ProxyStats {
  /** Bytes from the server to clients. */
  bytesDown: number;
  bytesUp: number;
  connections: number;
  open: number;
  peakOpen: number;
  outages: number;
}

export interface CountingProxy {
  readonly port: number;
  readonly url: string;
  readonly stats: ProxyStats;
  resetStats(): void;
  /** Cut every connection now and refuse (RST) new ones for `ms`. */
  outage(ms: number): Promise<void>;
  /** The open connections stop passing the server's bytes for `ms` (a half-open TCP path); new ones are not affected. */
  stall(ms: number): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: { host: string; port: number }, opts: { port?: number; scheme?: 'http' | 'https' } = {}): Promise<CountingProxy> {
  const stats: ProxyStats = { bytesDown: 0, bytesUp: 0, connections: 0, open: 0, peakOpen: 0, outages: 0 };
  const pairs = new Set<{ a: net.Socket; b: net.Socket }>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    stats.connections++;
    stats.open++;
    stats.peakOpen = Math.max(stats.peakOpen, stats.open);
    const upstream = net.connect(target.port, target.host);
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      stats.open--;
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => (stats.bytesUp += d.length));
    upstream.on('data', (d: Buffer) => (stats.bytesDown += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `${opts.scheme ?? 'http'}://127.0.0.1:${port}`,
    stats,
    resetStats() {
      Object.assign(stats, { bytesDown: 0, bytesUp: 0, connections: 0, peakOpen: stats.open, outages: 0 });
    },
    async outage(ms) {
      stats.outages++;
      refusing = true;
      for (const p of [...pairs]) {
        p.a.resetAndDestroy();
        p.b.destroy();
      }
      await new Promise((r) => setTimeout(r, ms));
      refusing = false;
    },
    stall(ms) {
      const stalled = [...pairs];
      for (const p of stalled) p.b.pause();
      setTimeout(() => {
        for (const p of stalled) if (!p.b.destroyed) p.b.resume();
      }, ms).unref();
    },
    async close() {
      for (const p of [...pairs]) {
        p.a.destroy();
        p.b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
