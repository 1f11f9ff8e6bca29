/** The fast path takes only plain invocations and leaves everything else to commander. */
import t from 'tap';
import { simpleArgs } from '../../src/cli/fast-args.js';

t.test('plain invocations', async (t) => {
  t.same(simpleArgs([], ['--job'], 0), { flags: new Map(), positional: [] });
  t.same(simpleArgs(['--job', 'ƒX', '--format=json'], ['--job', '--format'], 0), { flags: new Map([['--job', 'ƒX'], ['--format', 'json']]), positional: [] });
  t.same(simpleArgs(['NAME', '--job=1'], ['--job'], 1), { flags: new Map([['--job', '1']]), positional: ['NAME'] });
  t.same(simpleArgs(['--format='], ['--format'], 0)?.flags.get('--format'), '', 'an empty value is still a value');
});

t.test('anything else goes to commander', async (t) => {
  for (const args of [['--help'], ['-h'], ['--jobs', 'x'], ['--job'], ['--job', '--format'], ['--job', '1', '--job', '2'], ['--', 'x'], ['a', 'b'], ['-x']]) {
    t.equal(simpleArgs(args, ['--job', '--format'], 1), null, JSON.stringify(args));
  }
  t.equal(simpleArgs(['NAME'], ['--job'], 0), null, 'too many operands');
});
