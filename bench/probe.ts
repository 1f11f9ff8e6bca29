/**
 * Port probe: how long after a port starts listening the probe (src/net/port-probe.ts, with
 * nnf-envd's default timings) reports it reachable; one port, and 100 ports at once. The
 * listeners open `openAfterMs` after the probe started, as a user container that is slow to
 * start does.
 */
import net from 'node:net';
import { probePorts } from '../src/net/port-probe.js';
import { SCHEMA } from '../src/config/schema.js';
import { parseDuration } from '../src/config/duration.js';
import { summarize, type Summary } from './lib.js';

export interface ProbeRow {
  ports: number;
  openAfterMs: number;
  /** Listening -> reported reachable, ms. */
  detect: Summary;
  attempts: Summary;
}

export interface ProbeResult {
  settings: { attemptTimeoutMs: number; backoffInitialMs: number; backoffMaxMs: number };
  rows: ProbeRow[];
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function once(n: number, openAfterMs: number, settings: ProbeResult['settings']): Promise<ProbeRow> {
  const ports = await freePorts(n);
  const openedAt = new Map<number, number>();
  const seenAt = new Map<number, number>();
  const servers: net.Server[] = [];
  const opener = setTimeout(() => {
    for (const p of ports) {
      const s = net.createServer((c) => c.destroy());
      s.listen(p, '127.0.0.1', () => openedAt.set(p, performance.now()));
      servers.push(s);
    }
  }, openAfterMs);
  try {
    const results = await probePorts({
      host: '127.0.0.1',
      ports,
      attemptTimeoutMs: settings.attemptTimeoutMs,
      deadlineMs: 30_000,
      backoffInitialMs: settings.backoffInitialMs,
      backoffMaxMs: settings.backoffMaxMs,
      onResult: (r) => seenAt.set(r.port, performance.now()),
    });
    const bad = results.filter((r) => !r.reachable);
    if (bad.length > 0) throw new Error(`ports not reached: ${bad.map((r) => `${r.port} (${r.lastError})`).join(', ')}`);
    return {
      ports: n,
      openAfterMs,
      detect: summarize(ports.map((p) => seenAt.get(p)! - openedAt.get(p)!)),
      attempts: summarize(results.map((r) => r.attempts)),
    };
  } finally {
    clearTimeout(opener);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

export async function runProbe(opts: { log: (s: string) => void }): Promise<ProbeResult> {
  const settings = {
    attemptTimeoutMs: parseDuration(SCHEMA.PROBE_ATTEMPT_TIMEOUT.default)!,
    backoffInitialMs: parseDuration(SCHEMA.PROBE_BACKOFF_INITIAL.default)!,
    backoffMaxMs: parseDuration(SCHEMA.PROBE_BACKOFF_MAX.default)!,
  };
  const rows: ProbeRow[] = [];
  for (const [n, after] of [[1, 0], [1, 1000], [100, 0], [100, 1000], [100, 5000]] as const) {
    const row = await once(n, after, settings);
    rows.push(row);
    opts.log(`  ${n} port(s), open after ${after} ms: detected p50 ${row.detect.p50.toFixed(1)} ms, max ${row.detect.max.toFixed(1)} ms`);
  }
  return { settings, rows };
}
