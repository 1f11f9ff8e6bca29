/**
 * The reflector against the simulator while hundreds of workflows change many times and faults
 * are injected at random: dropped watches, stalled (half-open) watches, history compaction (410),
 * 429/503 with Retry-After, 500s, failing relists and latency. At the end the reflector's store
 * (and the state rebuilt from its events) equals the simulator's, object for object and
 * resourceVersion for resourceVersion, and every fault was recovered from within RECOVERY_BOUND_MS.
 *
 * The seed is printed; rerun with NNF_ENV_CHAOS_SEED=<seed> to replay the same choices.
 */
import t from 'tap';
import { KubeClient } from '../../src/kube/client.js';
import { Reflector } from '../../src/kube/reflector.js';
import { dwsResource, objectKey, type KubeObject } from '../../src/kube/resource.js';
import { startSimulator } from '../../src/sim/index.js';
import { sleepMs, waitUntil } from './script-server.js';
import { seededRandom } from '../helpers/prng.js';

const WF = dwsResource('workflows', 'v1alpha7');
/** Each fault must be recovered from (the reflector has seen the simulator's resourceVersion after it) within this. */
const RECOVERY_BOUND_MS = 8000;
const SILENCE_TIMEOUT_MS = 1000;
const INITIAL_WORKFLOWS = 300;


type FaultKind = 'drop' | 'stall' | 'compact' | '429' | '503' | '500' | 'list-503' | 'latency';
const KINDS: FaultKind[] = ['drop', 'stall', 'compact', '429', '503', '500', 'list-503', 'latency'];

t.test('the store equals the simulator after random faults under load', async (t) => {
  const seed = Number(process.env.NNF_ENV_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.comment(`seed ${seed}`);
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

  const sim = await startSimulator({ controllers: false, bookmarkIntervalMs: 250, historySize: 3000 });
  t.teardown(() => sim.close());
  const names: string[] = [];
  let nextId = 0;
  const newWorkflow = (): KubeObject => {
    const name = `chaos-${nextId++}`;
    names.push(name);
    return {
      apiVersion: 'dataworkflowservices.github.io/v1alpha7',
      kind: 'Workflow',
      metadata: { name, namespace: 'default', labels: { test: 'chaos' } },
      spec: { desiredState: 'Proposal', wlmID: 'flux', jobID: `f${nextId}`, userID: 1000, groupID: 1000, dwDirectives: [] },
      status: { state: 'Proposal', ready: false, env: { DW_WORKFLOW_NAME: name } },
    };
  };
  for (let i = 0; i < INITIAL_WORKFLOWS; i++) sim.create(WF, newWorkflow());

  const client = new KubeClient({ connection: { server: sim.url, insecureSkipTlsVerify: false, source: 'sim' }, requestTimeoutMs: 5000 });
  t.teardown(() => client.close());
  const r = new Reflector<KubeObject>({
    client,
    resource: WF,
    namespace: 'default',
    pageSize: 50,
    silenceTimeoutMs: SILENCE_TIMEOUT_MS,
    watchTimeoutMs: 4000,
    backoffInitialMs: 20,
    backoffMaxMs: 500,
    random: rand,
  });
  // What a consumer rebuilds from the events alone must match too.
  const shadow = new Map<string, KubeObject>();
  r.on('added', (o) => shadow.set(objectKey(o), o));
  r.on('updated', (o) => shadow.set(objectKey(o), o));
  r.on('deleted', (o) => shadow.delete(objectKey(o)));
  r.start();
  t.teardown(() => r.stop());
  await r.waitForSync();

  // Load: patch, create and delete workflows continuously.
  let mutating = true;
  let changes = 0;
  const mutate = () => {
    const roll = rand();
    if (roll < 0.1 || names.length < 50) {
      sim.create(WF, newWorkflow());
    } else if (roll < 0.2) {
      const i = Math.floor(rand() * names.length);
      const [name] = names.splice(i, 1);
      sim.delete(WF, 'default', name!);
    } else {
      const name = pick(names);
      sim.patchMerge(WF, 'default', name, { status: { message: `change ${changes}`, env: { [`NNF_K${changes % 7}`]: String(changes) } } });
    }
    changes++;
  };
  const mutator = (async () => {
    while (mutating) {
      for (let i = 0; i < 5; i++) mutate();
      await sleepMs(5);
    }
  })();

  const order = [...KINDS].sort(() => rand() - 0.5);
  for (let i = 0; i < 4; i++) order.push(pick(KINDS));
  const recoveries: Array<{ kind: FaultKind; ms: number }> = [];
  for (const kind of order) {
    await sleepMs(100 + rand() * 300);
    const f = sim.faults;
    switch (kind) {
      case 'drop': f.dropWatches(); break;
      case 'stall': f.stallWatches(3 * SILENCE_TIMEOUT_MS); break;
      // Hold the watch back, change things, forget the history: the resume must get 410 and relist.
      case 'compact': f.stallWatches(); mutate(); mutate(); f.compact(); f.dropWatches(); break;
      case '429': f.failNext({ status: 429, retryAfterSeconds: 1, match: (q) => q.watch }); f.dropWatches(); break;
      case '503': f.failNext({ status: 503, retryAfterSeconds: 1, match: (q) => q.watch }); f.dropWatches(); break;
      case '500': f.failNext({ status: 500, count: 3, match: (q) => q.watch }); f.dropWatches(); break;
      case 'list-503': f.failNext({ status: 503, retryAfterSeconds: 1, match: (q) => !q.watch }); f.stallWatches(); mutate(); f.compact(); f.dropWatches(); break;
      case 'latency': f.setLatency(150); f.dropWatches(); break;
    }
    // A change after the fault, so that catching up means having come through it.
    mutate();
    const target = Number(sim.currentResourceVersion());
    const t0 = performance.now();
    await waitUntil(() => Number(r.lastSyncResourceVersion) >= target, `recovery from ${kind}`, RECOVERY_BOUND_MS + 5000);
    const ms = performance.now() - t0;
    recoveries.push({ kind, ms });
    if (kind === 'latency') f.setLatency(0);
  }

  mutating = false;
  await mutator;
  const finalRv = sim.currentResourceVersion();
  await waitUntil(() => r.lastSyncResourceVersion === finalRv, 'the final resourceVersion', RECOVERY_BOUND_MS);

  for (const { kind, ms } of recoveries) t.ok(ms <= RECOVERY_BOUND_MS, `recovered from ${kind} in ${Math.round(ms)} ms (bound ${RECOVERY_BOUND_MS} ms)`);
  const byKey = (xs: KubeObject[]) => xs.map((o) => [objectKey(o), o] as const).sort(([a], [b]) => (a < b ? -1 : 1));
  const expected = byKey(sim.list<KubeObject>(WF, 'default'));
  t.equal(r.store.size, expected.length, `${expected.length} workflows in both`);
  t.same(byKey(r.store.list()), expected, 'the store equals the simulator, object for object');
  t.same(byKey([...shadow.values()]), expected, 'the events rebuild the same state');
  const rvMismatch = expected.filter(([k, o]) => r.store.get(k)?.metadata.resourceVersion !== o.metadata.resourceVersion);
  t.equal(rvMismatch.length, 0, 'resourceVersion for resourceVersion');
  t.ok(r.counters.relists >= 1, `relisted after compaction (${r.counters.relists})`);
  t.ok(r.counters.silences >= 1, `stalled watches detected (${r.counters.silences})`);
  t.ok(r.counters.errors >= 1, `errors seen and survived (${r.counters.errors})`);
  t.comment(`${changes} changes to ${nextId} workflows, ${order.length} faults; counters ${JSON.stringify(r.counters)}`);
  const worst = new Map<string, number>();
  for (const { kind, ms } of recoveries) worst.set(kind, Math.max(worst.get(kind) ?? 0, Math.round(ms)));
  t.comment(`worst recovery per fault (ms): ${JSON.stringify(Object.fromEntries(worst))}`);
});
