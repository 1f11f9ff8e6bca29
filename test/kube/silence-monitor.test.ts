import t from 'tap';
import { SilenceMonitor } from '../../src/kube/silence-monitor.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

t.test('a silent watch is reported once, between its timeout and 1.125 x plus scheduling slack', async (t) => {
  const m = new SilenceMonitor();
  const t0 = performance.now();
  const reported: number[] = [];
  m.add(200, () => reported.push(performance.now() - t0));
  await sleep(600);
  t.equal(reported.length, 1, 'reported once');
  t.ok(reported[0]! >= 200, `not before its timeout (${reported[0]!.toFixed(0)} ms)`);
  t.ok(reported[0]! < 200 * 1.125 + 150, `soon after it (${reported[0]!.toFixed(0)} ms)`);
  t.equal(m.size, 0, 'forgotten after the report');
});

t.test('many healthy watches: none reported, and the one timer fires rarely', async (t) => {
  const m = new SilenceMonitor();
  const timeout = 400;
  const watches = Array.from({ length: 500 }, () => m.add(timeout, () => t.fail('a healthy watch was reported silent')));
  // Bytes on every watch every 100 ms (a quarter of the timeout), for 2 s.
  for (let i = 0; i < 20; i++) {
    await sleep(100);
    const now = performance.now();
    for (const w of watches) w.watch.lastByte = now;
  }
  // Per-watch timers would have fired 500 x 5 times; the shared one fires about every
  // (timeout - 100 ms) however many watches there are.
  t.ok(m.checks <= 12, `one timer for all: ${m.checks} checks in 2 s`);
  for (const w of watches) w.remove();
  t.equal(m.size, 0);
});

t.test('removing every watch stops the timer; a stopped watch is never reported', async (t) => {
  const m = new SilenceMonitor();
  const a = m.add(100, () => t.fail('removed watch reported'));
  a.remove();
  await sleep(250);
  t.equal(m.checks, 0, 'no timer fired with no watch left');
});

t.test('watches with different timeouts: each is judged by its own', async (t) => {
  const m = new SilenceMonitor();
  const seen: string[] = [];
  const long = m.add(5000, () => seen.push('long'));
  m.add(150, () => seen.push('short'));
  await sleep(450);
  t.same(seen, ['short']);
  long.remove();
});
