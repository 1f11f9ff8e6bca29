import t from 'tap';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { SCHEMA } from '../../src/config/schema.js';
import type { ConfigKey, KeySpec } from '../../src/config/schema.js';
import { closestName, editDistance } from '../../src/config/suggest.js';
import { describeAllowed, formatValue, parseValue } from '../../src/config/values.js';

t.test('durations', async (t) => {
  const cases: Array<[string, number | null]> = [
    ['250ms', 250], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['1h30m', 5_400_000],
    ['2m5s500ms', 125_500], ['1.5s', 1500], ['0', 0], ['0s', 0], ['90', 90_000], ['0.25', 250], [' 10s ', 10_000],
    ['', null], ['abc', null], ['-1s', null], ['10', 10_000], ['10x', null], ['1h 30m', null], ['s', null], ['1.s', null], ['ms', null],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));
  for (const ms of [0, 1, 250, 1000, 1500, 60_000, 90_000, 3_600_000, 5_400_000, 86_400_000, 3_723_004]) {
    t.equal(parseDuration(formatDuration(ms)), ms, `round trip ${ms} (${formatDuration(ms)})`);
  }
  t.equal(formatDuration(5_400_000), '1h30m');
  t.equal(formatDuration(0), '0s');
  t.equal(formatDuration(100), '100ms');
});

t.test('every default in SCHEMA is valid for its own type', async (t) => {
  for (const key of Object.keys(SCHEMA) as ConfigKey[]) {
    const spec: KeySpec = SCHEMA[key];
    const r = parseValue(spec, spec.default);
    t.ok(r.ok, `${key}=${spec.default}: ${r.ok ? 'ok' : r.problem}`);
    if (r.ok && spec.default !== '') t.equal(parseValue(spec, formatValue(spec, r.value)).ok, true, `${key} formats back to a valid value`);
    t.ok(describeAllowed(spec).length > 0);
  }
});

t.test('values by kind', async (t) => {
  const int: KeySpec = { type: { kind: 'int', min: -5, max: 5 }, default: '0', doc: '' };
  t.same(parseValue(int, '-5'), { ok: true, value: -5 });
  t.same(parseValue(int, '+3'), { ok: true, value: 3 });
  t.same(parseValue(int, '6'), { ok: false, problem: 'out of range (allowed -5 to 5)' });
  t.same(parseValue(int, '99999999999999999999'), { ok: false, problem: 'out of range (allowed -5 to 5)' });
  const mode: KeySpec = { type: { kind: 'mode' }, default: '0660', doc: '' };
  t.same(parseValue(mode, '0755'), { ok: true, value: 0o755 });
  t.same(parseValue(mode, '4755'), { ok: true, value: 0o4755 });
  t.equal(formatValue(mode, 0o600), '0600');
  t.notOk(parseValue(mode, '0o755').ok);
  const list: KeySpec = { type: { kind: 'list' }, default: '', doc: '' };
  t.same(parseValue(list, ''), { ok: true, value: [] }, 'an empty list is a list');
  t.same(parseValue(list, 'a, b ,,c'), { ok: true, value: ['a', 'b', 'c'] });
  const optionalString: KeySpec = { type: { kind: 'string' }, default: '', doc: '', optional: true };
  t.same(parseValue(optionalString, '   '), { ok: true, value: '' });
  const bool: KeySpec = { type: { kind: 'bool' }, default: 'true', doc: '' };
  for (const w of ['true', 'YES', '1', 'On']) t.same(parseValue(bool, w), { ok: true, value: true }, w);
  for (const w of ['false', 'no', '0', 'OFF']) t.same(parseValue(bool, w), { ok: true, value: false }, w);
});

t.test('suggestions', async (t) => {
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.equal(editDistance('', 'abc'), 3);
  t.equal(closestName('PROBE_DEADLIN', ['PROBE_DEADLINE', 'NODE_NAME']), 'PROBE_DEADLINE');
  t.equal(closestName('node_name', ['PROBE_DEADLINE', 'NODE_NAME']), 'NODE_NAME');
  t.equal(closestName('XYZZY_FOO_BAR', ['PROBE_DEADLINE', 'NODE_NAME']), undefined);
  t.equal(closestName('shwo', ['show', 'status']), 'show');
});
