import t from 'tap';
import { WorkQueue } from '../../src/daemon/work-queue.js';
import { eventually } from '../helpers/eventually.js';

const policy = { initialMs: 5, maxMs: 20 };

t.test('one sync per key at a time; adds during a sync cause exactly one more', async (t) => {
  let running = 0;
  let maxRunning = 0;
  const runs: string[] = [];
  let release: () => void = () => {};
  const q = new WorkQueue<string>({
    retry: policy,
    sync: async (k) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs.push(k);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
      running--;
    },
  });
  q.add('a');
  t.ok(q.busy('a'));
  for (let i = 0; i < 5; i++) q.add('a');
  release();
  await eventually('queue idle', () => !q.busy('a'));
  t.same(runs, ['a', 'a'], 'five adds during the sync: one more sync');
  t.equal(maxRunning, 1);
  await q.shutdown();
});

t.test('a failed sync is retried after a backoff; success resets it; forget cancels a retry', async (t) => {
  let fails = 2;
  const errors: number[] = [];
  const synced: string[] = [];
  const q = new WorkQueue<string>({
    retry: policy,
    onError: (_k, _e, ms) => errors.push(ms),
    sync: async (k) => {
      if (k === 'flaky' && fails-- > 0) throw new Error('write failed');
      if (k === 'broken') throw new Error('always');
      synced.push(k);
    },
  });
  q.add('flaky');
  await eventually('flaky synced after retries', () => synced.includes('flaky'));
  t.equal(errors.length, 2);
  t.ok(errors.every((ms) => ms >= 2 && ms <= 20), `pauses within the policy: ${errors}`);
  q.add('broken');
  await eventually('broken failed once', () => errors.length >= 3);
  await q.forget('broken');
  const before = errors.length;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(errors.length, before, 'no retry after forget');
  await q.shutdown();
  q.add('after');
  t.notOk(q.busy('after'), 'no work after shutdown');
});
