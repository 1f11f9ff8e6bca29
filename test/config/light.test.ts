/**
 * The fast config reader must give the full loader's answer, or none: checked against dotenv
 * itself and against loadConfig on the same files and environments.
 */
import t from 'tap';
import dotenv from 'dotenv';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSimpleDotenv, readConfigKeys } from '../../src/config/light.js';
import { loadConfig } from '../../src/config/load.js';

const SIMPLE = [
  'RUNTIME_DIR=/run/x\n',
  '# comment\n\nRUNTIME_DIR = /run/x   \n',
  "export RUNTIME_DIR='/run/with space'\n",
  'RUNTIME_DIR="/run/dq"  # trailing comment\n',
  'RUNTIME_DIR=/run/a #comment\n',
  'RUNTIME_DIR=/run/first\nRUNTIME_DIR=/run/second\n',
  'RUNTIME_DIR=\n',
  "RUNTIME_DIR=''\n",
  'A=1\r\nB=2\r\n',
  "PROLOG_TIMEOUT='5m'\nPROLOG_ON_NODE_ERROR=fail\n",
  "X='it\\'s'\n",
];
// Lines dotenv reads in ways the simple reader does not try to follow: it must say "not sure".
const TRICKY = [
  'RUNTIME_DIR="/run/\\nnewline"\n',
  'RUNTIME_DIR="multi\nline"\n',
  'RUNTIME_DIR=`/run/backtick`\n',
  'RUNTIME_DIR=/run/a#b\n',
  'RUNTIME_DIR: /run/colon\n',
  'some.key=1\n',
  'not a line\n',
  'RUNTIME_DIR=/run/x\\y\n',
];

t.test('parseSimpleDotenv agrees with dotenv.parse, or declines', async (t) => {
  for (const text of SIMPLE) {
    const mine = parseSimpleDotenv(text);
    t.ok(mine, `reads ${JSON.stringify(text)}`);
    t.same(Object.fromEntries(mine ?? []), dotenv.parse(text), `same as dotenv: ${JSON.stringify(text)}`);
  }
  for (const text of TRICKY) t.equal(parseSimpleDotenv(text), null, `declines ${JSON.stringify(text)}`);
});

t.test('readConfigKeys agrees with loadConfig, or declines', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-light-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const KEYS = ['RUNTIME_DIR', 'SOCKET_PATH', 'PROLOG_TIMEOUT', 'PROLOG_ON_NODE_ERROR', 'WORKFLOW_NAMESPACE', 'WORKFLOW_NAME_TEMPLATE'] as const;
  const cases: Array<{ file: string; env?: Record<string, string> }> = [
    { file: '' },
    { file: 'RUNTIME_DIR=/run/a\nPROLOG_TIMEOUT=90\n' },
    { file: "PROLOG_ON_NODE_ERROR='FAIL'\nWORKFLOW_NAMESPACE=jobs\n" },
    { file: 'RUNTIME_DIR=/run/a\n', env: { NNF_ENV_RUNTIME_DIR: '/run/from-env', NNF_ENV_PROLOG_TIMEOUT: '1h30m' } },
    { file: 'SOCKET_PATH=/var/run/x.sock\nWORKFLOW_NAME_TEMPLATE=job-{jobid.f58plain}\nNODE_NAME=c1\n' },
  ];
  let n = 0;
  for (const c of cases) {
    const file = join(dir, `c${n++}.conf`);
    await writeFile(file, c.file);
    const env = { NNF_ENV_CONFIG: file, ...c.env };
    const light = readConfigKeys(KEYS, { env });
    const full = (await loadConfig({ env })).config;
    t.ok(light, `answers for ${JSON.stringify(c)}`);
    for (const k of KEYS) t.same(light?.[k], full[k], `${k} for ${JSON.stringify(c)}`);
  }

  const declines = async (what: string, text: string, env: Record<string, string> = {}) => {
    const file = join(dir, `d${n++}.conf`);
    await writeFile(file, text);
    t.equal(readConfigKeys(KEYS, { env: { NNF_ENV_CONFIG: file, ...env } }), null, what);
    await t.rejects(loadConfig({ env: { NNF_ENV_CONFIG: file, ...env } }), `and loadConfig reports it: ${what}`);
  };
  await declines('unknown key', 'RUNTIM_DIR=/run/a\n');
  await declines('invalid value', 'PROLOG_TIMEOUT=soon\n');
  await declines('relative path', 'RUNTIME_DIR=run/a\n');
  await declines('bad template', 'WORKFLOW_NAME_TEMPLATE=fixed-name\n');
  await declines('invalid value in the environment', '', { NNF_ENV_PROLOG_ON_NODE_ERROR: 'maybe' });
  t.equal(readConfigKeys(['RUNTIME_DIR'], { env: { NNF_ENV_CONFIG: join(dir, 'missing.conf') } }), null, 'a named file that is missing');

  // The environment alone answers without any file (not even the default one).
  t.same(readConfigKeys(['RUNTIME_DIR'], { env: { NNF_ENV_RUNTIME_DIR: '/run/e' }, defaultConfigFile: '/nonexistent/x' }), { RUNTIME_DIR: '/run/e' });
  t.equal(readConfigKeys(['NODE_NAME'], { env: {} }), null, 'NODE_NAME\'s default is the loader\'s business');
  // No file at all: the defaults.
  t.same(readConfigKeys(['RUNTIME_DIR', 'PROLOG_TIMEOUT'], { env: {}, defaultConfigFile: null }), { RUNTIME_DIR: '/run/nnf-env', PROLOG_TIMEOUT: 25 * 60_000 });
});
