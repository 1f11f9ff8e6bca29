/**
 * Ports of simulated user containers: allocation from the SystemConfiguration `ports` ranges
 * (as nnf-sos does at Setup) and the real TCP listeners that stand in for the containers.
 *
 * Tests run in parallel on one machine, so a port in the range may already be taken by someone
 * else: the allocator tries to bind each candidate on the rabbit address and skips the ones it
 * cannot bind. The check and the later listen are not atomic; a port grabbed in between makes
 * that listener fail (logged), like a container that cannot bind. With ports mode `os` (option
 * `ports: '0'`) the kernel picks free ephemeral ports instead of a range.
 */
import net from 'node:net';
import type { Logger } from 'pino';

/** Expand SystemConfiguration `ports` entries (ints and "a-b" strings) to a sorted list. */
export function expandPorts(spec: ReadonlyArray<number | string>): number[] {
  const out = new Set<number>();
  for (const entry of spec) {
    if (typeof entry === 'number') {
      if (Number.isInteger(entry) && entry > 0 && entry < 65536) out.add(entry);
      continue;
    }
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(String(entry));
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let p = Math.max(1, lo); p <= Math.min(65535, hi); p++) out.add(p);
  }
  return [...out].sort((a, b) => a - b);
}

/** The `ports` option/flag: '0' for kernel-chosen ports, else a comma list of ports and ranges. */
export function parsePortsOption(s: string): { mode: 'os' } | { mode: 'range'; spec: Array<number | string> } {
  const t = s.trim();
  if (t === '0') return { mode: 'os' };
  const spec: Array<number | string> = [];
  for (const part of t.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (/^\d+$/.test(part)) spec.push(Number(part));
    else if (/^\d+-\d+$/.test(part)) spec.push(part);
    else throw new RangeError(`ports: "${part}" is neither a port nor a range like 4000-4999`);
  }
  if (expandPorts(spec).length === 0) throw new RangeError(`ports: "${s}" holds no usable port`);
  return { mode: 'range', spec };
}

function tryBind(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ host, port, exclusive: true }, () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

export class PortAllocator {
  private readonly owners = new Map<number, string>();
  /** Released ports and when their cooldown ends (NnfPortManager's Cooldown allocations). */
  private readonly cooling = new Map<number, number>();

  private isCooling(p: number): boolean {
    const until = this.cooling.get(p);
    if (until === undefined) return false;
    if (Date.now() >= until) {
      this.cooling.delete(p);
      return false;
    }
    return true;
  }

  constructor(private readonly host: string) {}

  /** Ports held by live workflows. */
  inUse(): Map<number, string> {
    return new Map(this.owners);
  }

  portsOf(owner: string): number[] {
    return [...this.owners].filter(([, o]) => o === owner).map(([p]) => p).sort((a, b) => a - b);
  }

  /** `count` ports for `owner` from `candidates` (or kernel-chosen with 'os'); fewer when the range is exhausted. */
  async allocate(owner: string, candidates: number[] | 'os', count: number): Promise<number[]> {
    const got: number[] = [];
    if (candidates === 'os') {
      for (let tries = 0; got.length < count && tries < count * 20; tries++) {
        const p = await tryBind(this.host, 0);
        if (p !== undefined && !this.owners.has(p)) {
          this.owners.set(p, owner);
          got.push(p);
        }
      }
      return got;
    }
    for (const p of candidates) {
      if (got.length >= count) break;
      if (this.owners.has(p) || this.isCooling(p)) continue;
      this.owners.set(p, owner); // reserve before the (async) bind check
      if ((await tryBind(this.host, p)) === undefined) this.owners.delete(p);
      else got.push(p);
    }
    return got;
  }

  /** Frees the owner's ports; with `cooldownMs` they are not handed out again before it passed. */
  release(owner: string, cooldownMs = 0): number[] {
    const freed = this.portsOf(owner);
    for (const p of freed) {
      this.owners.delete(p);
      if (cooldownMs > 0) this.cooling.set(p, Date.now() + cooldownMs);
    }
    return freed;
  }
}

/** The simulated user containers: TCP listeners that accept and greet, per workflow. */
export class UserContainers {
  private readonly servers = new Map<string, net.Server[]>();
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly host: string, private readonly logger: Logger) {}

  /** Open listeners on `ports` for `owner` after `delayMs`. */
  open(owner: string, ports: number[], delayMs: number): void {
    this.cancelPending(owner);
    const start = () => {
      this.timers.delete(owner);
      void this.listenAll(owner, ports);
    };
    if (delayMs > 0) this.timers.set(owner, setTimeout(start, delayMs));
    else start();
  }

  private async listenAll(owner: string, ports: number[]): Promise<void> {
    const list = this.servers.get(owner) ?? [];
    this.servers.set(owner, list);
    for (const port of ports) {
      const srv = net.createServer((sock) => {
        this.sockets.add(sock);
        sock.on('error', () => {});
        sock.on('close', () => this.sockets.delete(sock));
        sock.end(`nnf-env-sim user container ${owner} port ${port}\n`);
      });
      list.push(srv);
      await new Promise<void>((resolve) => {
        srv.once('error', (err) => {
          this.logger.warn({ err, owner, port, host: this.host }, 'simulated user container could not listen');
          resolve();
        });
        srv.listen({ host: this.host, port }, () => resolve());
      });
      if (!this.servers.has(owner)) srv.close(); // closed meanwhile
    }
  }

  isListening(owner: string): boolean {
    return (this.servers.get(owner) ?? []).some((s) => s.listening);
  }

  private cancelPending(owner: string): void {
    const t = this.timers.get(owner);
    if (t) clearTimeout(t);
    this.timers.delete(owner);
  }

  close(owner: string): void {
    this.cancelPending(owner);
    for (const s of this.servers.get(owner) ?? []) s.close();
    this.servers.delete(owner);
  }

  closeAll(): void {
    for (const owner of [...this.servers.keys(), ...this.timers.keys()]) this.close(owner);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
