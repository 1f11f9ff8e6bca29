import { EventEmitter } from 'node:events';
import type { DaemonEvent } from '../contract/control-api.js';

/**
 * State changes the daemon announces: the WebSocket `/v1/events` forwards them as JSON, long
 * polls wait on them, metrics count them. One bus per daemon (tests run several in a process).
 */
export class DaemonEvents extends EventEmitter {
  constructor() {
    super();
    // Every WebSocket client and long poll listens here.
    this.setMaxListeners(0);
  }

  publish(ev: DaemonEvent): void {
    this.emit('event', ev);
  }

  subscribe(fn: (ev: DaemonEvent) => void): () => void {
    this.on('event', fn);
    return () => this.off('event', fn);
  }
}
