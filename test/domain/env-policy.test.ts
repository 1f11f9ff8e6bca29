import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { envLineBytes, validateWorkflowEnv, type EnvPolicy } from '../../src/domain/env-policy.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { fixture } from '../helpers/paths.js';

const policy: EnvPolicy = { allowedPrefixes: ['DW_', 'NNF_'], maxVariables: 1024, maxValueBytes: 65536, maxTotalBytes: 1 << 20 };

t.test('fixture env is accepted whole', async (t) => {
  const wf = parse(readFileSync(fixture('workflow-prerun-ready.yaml'), 'utf8')) as Workflow;
  const r = validateWorkflowEnv(wf.status?.env, policy);
  t.same(r.rejected, []);
  t.same(Object.keys(r.accepted), Object.keys(wf.status!.env!).sort());
});

t.test('rejections', async (t) => {
  const env: Record<string, unknown> = {
    DW_OK: 'fine',
    LD_PRELOAD: '/x.so',
    PATH: '/bin',
    dw_lower: 'x',
    '1DW': 'x',
    'DW-DASH': 'x',
    DW_NL: 'a\nb',
    DW_NUL: 'a\u0000b',
    DW_ESC: '\u001b[31m',
    DW_C1: '\u009b',
    DW_BOTH: `'"`,
    DW_BACKSLASH_END: 'a\\',
    DW_SQ: "it's",
    DW_DQ_SPECIAL: 'a "$x"',
    DW_NUM: 5,
    DW_NULL: null,
    DW_BIG: 'x'.repeat(70_000),
    NNF_UNICODE: 'ünïcødé ✓',
    NNF_ENV_RUNTIME_DIR: '/tmp/evil',
    DW_EMPTY: '',
  };
  const r = validateWorkflowEnv(env, policy);
  const reasons = Object.fromEntries(r.rejected.map((x) => [x.name, x.reason]));
  t.same(reasons, {
    LD_PRELOAD: 'prefix-not-allowed',
    PATH: 'prefix-not-allowed',
    dw_lower: 'prefix-not-allowed',
    NNF_ENV_RUNTIME_DIR: 'reserved-name',
    '1DW': 'invalid-name',
    'DW-DASH': 'invalid-name',
    DW_NL: 'control-character',
    DW_NUL: 'control-character',
    DW_ESC: 'control-character',
    DW_C1: 'control-character',
    DW_BOTH: 'unrepresentable',
    DW_BACKSLASH_END: 'unrepresentable',
    DW_NUM: 'unrepresentable',
    DW_NULL: 'unrepresentable',
    DW_BIG: 'value-too-large',
  });
  t.same(Object.keys(r.accepted).sort(), ['DW_DQ_SPECIAL', 'DW_EMPTY', 'DW_OK', 'DW_SQ', 'NNF_UNICODE']);
  t.equal(r.accepted.DW_SQ, "it's");
});

t.test('bounds: count and total size, decided in name order', async (t) => {
  const env: Record<string, string> = {};
  for (let i = 0; i < 10; i++) env[`DW_V${i}`] = 'v';
  const few = validateWorkflowEnv(env, { ...policy, maxVariables: 3 });
  t.same(Object.keys(few.accepted), ['DW_V0', 'DW_V1', 'DW_V2']);
  t.equal(few.rejected.length, 7);
  t.ok(few.rejected.every((r) => r.reason === 'too-many-variables'));
  const line = envLineBytes('DW_V0', 'v');
  const small = validateWorkflowEnv(env, { ...policy, maxTotalBytes: line * 4 + 100, reservedBytes: 100 });
  t.equal(Object.keys(small.accepted).length, 4);
  t.ok(small.rejected.every((r) => r.reason === 'file-too-large'));
});

t.test('not an object', async (t) => {
  for (const v of [undefined, null, 'x', 5, ['DW_A']]) t.same(validateWorkflowEnv(v, policy), { accepted: {}, rejected: [] });
});

t.test('a rejected name is printable', async (t) => {
  const r = validateWorkflowEnv({ ['bad\nname' + 'x'.repeat(400)]: 'v' }, policy);
  t.equal(r.rejected[0]!.reason, 'invalid-name');
  t.notMatch(r.rejected[0]!.name, /\n/);
  t.ok(r.rejected[0]!.name.length <= 256);
});
