/**
 * TCP reachability of the user container's ports, the way readiness tools count it (a
 * completed handshake is success) without their known faults (REFERENCE.md section 7):
 * - host and port travel separately: IPv6 literals work, `[::1]` too; nothing splits
 *   `host:port`;
 * - a host name is resolved to all its addresses and every address is tried in the same
 *   attempt (first handshake wins), so `localhost` -> ::1 + 127.0.0.1 finds a server that
 *   listens on 127.0.0.1 only; a failed resolution is retried on the next attempt;
 * - a per-attempt timeout distinct from the overall deadline, exponential backoff with jitter
 *   between attempts, all ports in parallel, abortable.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { setMaxListeners } from 'node:events';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { NnfEnvError, errnoCode, errorMessage } from '../core/errors.js';
import { Backoff, sleep } from '../core/backoff.js';
import { formatHostPort, ipFamily, isValidHostname, stripBrackets } from '../contract/address.js';
import type { PortResult } from '../contract/job-status.js';
import { MAX_PROBE_PORTS, ProbeError, checkPort } from '../contract/port-list.js';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Name -> addresses. Default: dns.lookup(host, { all: true }) (the node's resolver: /etc/hosts, DNS). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export interface ProbeOptions {
  /** Host name or IP literal (IPv6 with or without brackets). */
  host: string;
  ports: number[];
  /** Timeout of one connect attempt. */
  attemptTimeoutMs: number;
  /** Keep trying each port this long from the start; 0: one attempt only. */
  deadlineMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Aborting rejects the probe with the signal's reason and closes every socket. */
  signal?: AbortSignal;
  /** Called once per port, as soon as that port's result is final. */
  onResult?: (result: PortResult) => void;
  /** For tests (and sites with their own resolution): replaces dns.lookup. */
  lookup?: Resolver;
  /** For tests: randomness of the backoff jitter. */
  random?: () => number;
}

/** The host as given, without IPv6 brackets; validated (IP literal or host name). */
export function normalizeProbeHost(host: string): { host: string; family: 0 | 4 | 6 } {
  const h = stripBrackets(host.trim());
  const family = ipFamily(h);
  if (family !== 0) return { host: h, family };
  const name = h.endsWith('.') ? h.slice(0, -1) : h;
  if (!isValidHostname(name)) {
    throw new ProbeError('INVALID_PROBE_HOST', `not a host name or IP address: ${JSON.stringify(host.slice(0, 100))}`,
      'check NNF_CONTAINER_LAUNCHER and the rabbit address');
  }
  return { host: h, family: 0 };
}

const defaultResolver: Resolver = async (host) => dnsLookup(host, { all: true, verbatim: true });

/** Shares one in-flight resolution among the ports; a failed one is retried on the next call. */
class SharedResolution {
  private pending: Promise<ResolvedAddress[]> | null = null;
  private failed = false;

  constructor(
    private readonly host: string,
    private readonly literal: ResolvedAddress | null,
    private readonly resolver: Resolver,
  ) {}

  get(timeoutMs: number): Promise<ResolvedAddress[]> {
    if (this.literal) return Promise.resolve([this.literal]);
    if (!this.pending || this.failed) {
      this.failed = false;
      this.pending = this.resolve(timeoutMs).catch((err: unknown) => {
        this.failed = true;
        throw err;
      });
    }
    return this.pending;
  }

  private async resolve(timeoutMs: number): Promise<ResolvedAddress[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`DNS lookup of ${this.host} timed out after ${timeoutMs}ms`)), timeoutMs);
    });
    try {
      const found = await Promise.race([
        this.resolver(this.host).catch((err: unknown) => {
          throw new Error(`${errnoCode(err) ?? 'ENOTFOUND'} ${this.host} (DNS lookup failed)`);
        }),
        timeout,
      ]);
      const unique = new Map<string, ResolvedAddress>();
      for (const a of found) if (ipFamily(a.address) !== 0) unique.set(a.address, a);
      if (unique.size === 0) throw new Error(`ENOTFOUND ${this.host} (no addresses)`);
      return [...unique.values()];
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One TCP handshake; resolves when it completes (the socket is closed at once), rejects with a one-line reason. */
function connectOnce(address: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const target = formatHostPort(address, port);
    const socket = connect({ host: address, port, family: ipFamily(address) || undefined, noDelay: true });
    const timer = setTimeout(() => finish(new Error(`timeout after ${timeoutMs}ms connecting to ${target}`)), timeoutMs);
    const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      socket.on('error', () => undefined); // late errors of a destroyed socket are of no interest
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.once('connect', () => finish(null));
    socket.once('error', (err) => finish(new Error(`${errnoCode(err) ?? 'ERROR'} ${target}`)));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** All addresses at once; null when one handshake completed, else the reasons joined. */
async function attemptAddresses(addresses: ResolvedAddress[], port: number, timeoutMs: number, outer: AbortSignal): Promise<string | null> {
  const race = new AbortController();
  setMaxListeners(0, race.signal);
  const onOuter = () => race.abort(outer.reason);
  outer.addEventListener('abort', onOuter, { once: true });
  const errors: string[] = [];
  try {
    let won = false;
    await Promise.all(
      addresses.map((a) =>
        connectOnce(a.address, port, timeoutMs, race.signal).then(
          () => {
            won = true;
            race.abort(new Error('another address answered first'));
          },
          (err: unknown) => {
            if (!won) errors.push(errorMessage(err));
          },
        ),
      ),
    );
    if (outer.aborted) throw outer.reason;
    return won ? null : errors.join('; ');
  } finally {
    outer.removeEventListener('abort', onOuter);
  }
}

/** `p`, or the signal's reason as soon as it aborts (a hanging DNS lookup must not delay an abort). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function checkOptions(o: ProbeOptions): void {
  const bad = (what: string) => {
    throw new ProbeError('INVALID_PROBE_OPTIONS', `port probe: ${what}`, 'check the PROBE_* settings');
  };
  if (!(o.attemptTimeoutMs > 0)) bad(`attempt timeout must be > 0 (got ${o.attemptTimeoutMs})`);
  if (!(o.deadlineMs >= 0)) bad(`deadline must be >= 0 (got ${o.deadlineMs})`);
  if (!(o.backoffInitialMs > 0) || !(o.backoffMaxMs >= o.backoffInitialMs)) {
    bad(`backoff needs 0 < initial <= max (got ${o.backoffInitialMs}, ${o.backoffMaxMs})`);
  }
  if (o.ports.length > MAX_PROBE_PORTS) bad(`${o.ports.length} ports (at most ${MAX_PROBE_PORTS})`);
}

/**
 * Probe every port of `host` in parallel. Results come in the order of `ports` (duplicates
 * dropped). Rejects only for invalid options or an abort.
 */
export async function probePorts(opts: ProbeOptions): Promise<PortResult[]> {
  checkOptions(opts);
  const { host, family } = normalizeProbeHost(opts.host);
  const ports = [...new Set(opts.ports.map((p) => checkPort(p, 'port probe')))];
  opts.signal?.throwIfAborted();
  // One internal signal that follows the caller's: every port and attempt listens to it
  // (hundreds of listeners for 100 ports), and the caller's signal gets a single listener.
  const internal = new AbortController();
  setMaxListeners(0, internal.signal);
  const signal = internal.signal;
  const follow = () => internal.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', follow, { once: true });
  const resolution = new SharedResolution(host, family ? { address: host, family } : null, opts.lookup ?? defaultResolver);
  const start = performance.now();
  const deadlineAt = start + opts.deadlineMs;

  const probeOne = async (port: number): Promise<PortResult> => {
    const backoff = new Backoff({ initialMs: opts.backoffInitialMs, maxMs: opts.backoffMaxMs, ...(opts.random ? { random: opts.random } : {}) });
    let attempts = 0;
    let lastError: string | null = null;
    for (;;) {
      signal.throwIfAborted();
      attempts++;
      // The last attempt is cut at the deadline: the deadline bounds the whole probe.
      const timeoutMs = opts.deadlineMs === 0 ? opts.attemptTimeoutMs : Math.max(1, Math.min(opts.attemptTimeoutMs, Math.ceil(deadlineAt - performance.now())));
      try {
        const addresses = await untilAborted(resolution.get(timeoutMs), signal);
        const failure = await attemptAddresses(addresses, port, timeoutMs, signal);
        if (failure === null) {
          return { port, reachable: true, attempts, timeToFirstSuccessMs: Math.round(performance.now() - start), lastError: null };
        }
        lastError = failure;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        lastError = errorMessage(err);
      }
      if (opts.deadlineMs === 0) break;
      const left = deadlineAt - performance.now();
      if (left <= 0) break;
      await sleep(Math.min(backoff.next(), left), signal);
      if (deadlineAt - performance.now() <= 0) break;
    }
    return { port, reachable: false, attempts, timeToFirstSuccessMs: null, lastError };
  };

  try {
    return await Promise.all(
      ports.map(async (port) => {
        const result = await probeOne(port);
        try {
          opts.onResult?.(result);
        } catch {
          // A failing observer must not change the probe's outcome.
        }
        return result;
      }),
    );
  } finally {
    opts.signal?.removeEventListener('abort', follow);
    // Ends the other ports' attempts when one of them failed (only an abort can).
    if (!internal.signal.aborted) internal.abort(new Error('probe finished'));
  }
}
