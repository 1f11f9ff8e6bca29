/**
 * The backends a suite runs on: always the simulator; the real kube-apiserver too when it can
 * be built here. Only test/real/availability.test.ts reports the skip (one line); under
 * CI=true a server that cannot be built fails the run there and here.
 */
import type { Backend } from './cluster.js';
import { realServerSkipReason } from './real-server.js';

export async function backends(): Promise<Backend[]> {
  return (await realServerSkipReason()) === undefined ? ['sim', 'real'] : ['sim'];
}
