import type { Reflector, ReflectorCounters } from '../kube/reflector.js';
import type { KubeObject } from '../kube/resource.js';
import type { ConnectionInfo, WatchTotals } from '../contract/control-api.js';
import type { DaemonEvents } from '../api/event-bus.js';

/**
 * Watch counters summed over every reflector the daemon ran (per-job watches come and go, the
 * metrics must not go backwards), and the API connection state derived from the reflectors:
 * one in backoff means degraded, one watching or freshly listed means ok.
 */
export class WatchStats {
  private readonly live = new Set<Reflector<KubeObject>>();
  private readonly retired: ReflectorCounters = { events: 0, bookmarks: 0, relists: 0, reconnects: 0, bytes: 0, errors: 0, malformedLines: 0, oversizedLines: 0, silences: 0 };
  private conn: ConnectionInfo;

  constructor(private readonly events: DaemonEvents, server: string) {
    this.conn = { state: 'connecting', server, since: new Date().toISOString(), error: null };
  }

  get connection(): ConnectionInfo {
    return this.conn;
  }

  /** Follows a reflector until `retire`; returns it for chaining. */
  add<T extends KubeObject>(r: Reflector<T>): Reflector<T> {
    const any = r as unknown as Reflector<KubeObject>;
    this.live.add(any);
    r.on('state', (state) => {
      if (state === 'backoff') this.setConnection('degraded', r.lastError?.message ?? 'a list or watch failed');
      else if (state === 'watching') this.setConnection('ok', null);
    });
    r.on('synced', () => this.setConnection('ok', null));
    return r;
  }

  retire<T extends KubeObject>(r: Reflector<T>): void {
    const any = r as unknown as Reflector<KubeObject>;
    if (!this.live.delete(any)) return;
    for (const k of Object.keys(this.retired) as Array<keyof ReflectorCounters>) this.retired[k] += r.counters[k];
  }

  /** Every counter, summed. */
  counters(): ReflectorCounters {
    const out = { ...this.retired };
    for (const r of this.live) for (const k of Object.keys(out) as Array<keyof ReflectorCounters>) out[k] += r.counters[k];
    return out;
  }

  totals(): WatchTotals {
    const c = this.counters();
    return { events: c.events, relists: c.relists, reconnects: c.reconnects, bytes: c.bytes };
  }

  get liveWatches(): number {
    return this.live.size;
  }

  setConnection(state: ConnectionInfo['state'], error: string | null): void {
    if (state === this.conn.state && error === this.conn.error) return;
    // Errors while degraded update the message without a new event storm.
    const changedState = state !== this.conn.state;
    this.conn = { state, server: this.conn.server, since: changedState ? new Date().toISOString() : this.conn.since, error };
    if (changedState) this.events.publish({ type: 'connection', connection: this.conn });
  }
}
