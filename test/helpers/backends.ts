/**
 * The backends a suite runs on: always the simulator; the real kube-apiserver too when it can
 * be built here. The files that need the real server say in one line that they are skipped
 * (real-server.ts); under CI=true a server that cannot be built fails the run.
 */
import type { Backend } from './cluster.js';
import { realServerSkipReason } from './real-server.js';

export async function backends(): Promise<Backend[]> {
  return (await realServerSkipReason()) === undefined ? ['sim', 'real'] : ['sim'];
}
