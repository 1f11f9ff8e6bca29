import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { renderConfig, renderConfigJson } from '../../src/config/render.js';
import { REDACTED, redactValue } from '../../src/config/render.js';
import { SCHEMA } from '../../src/config/schema.js';
import type { KeySpec } from '../../src/config/schema.js';
import { nnfEnvdBin } from '../helpers/paths.js';

t.test('table: every key with its value and source', async (t) => {
  const dir = t.testdir({ 'nnf-env.conf': '\nPROBE_DEADLINE=90s\n' });
  const file = join(dir, 'nnf-env.conf');
  const loaded = await loadConfig({ env: { NNF_ENV_NODE_NAME: 'c1' }, argvFlags: { LOG_LEVEL: 'debug' }, configFile: file });
  const out = renderConfig(loaded);
  const lines = out.trimEnd().split('\n');
  t.equal(lines[0], `# config file: ${file}`);
  t.match(lines[1], /^KEY\s+VALUE\s+SOURCE$/);
  t.equal(lines.length, 2 + Object.keys(SCHEMA).length, 'one line per key');
  t.match(out, /^NODE_NAME\s+c1\s+NNF_ENV_NODE_NAME$/m);
  t.match(out, new RegExp(`^PROBE_DEADLINE\\s+1m30s\\s+${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2$`, 'm'));
  t.match(out, /^LOG_LEVEL\s+debug\s+--log-level$/m);
  t.match(out, /^SOCKET_MODE\s+0660\s+default$/m);
  t.match(out, /^RABBIT_NAME\s+\(unset\)\s+default$/m);
  t.match(out, /^ENV_ALLOWED_PREFIXES\s+DW_,NNF_\s+default$/m);
});

t.test('URL credentials and secret keys are redacted', async (t) => {
  const loaded = await loadConfig({ env: { NNF_ENV_KUBE_SERVER: 'https://admin:hunter2@api.example:6443' }, defaultConfigFile: null });
  const table = renderConfig(loaded, { redact: true });
  t.notMatch(table, /hunter2/);
  t.match(table, /https:\/\/<redacted>@api\.example:6443/);
  const json = renderConfigJson(loaded, { redact: true });
  t.notMatch(json, /hunter2/);
  t.match(renderConfig(loaded, { redact: false }), /hunter2/, 'only when asked');
  const secret: KeySpec = { type: { kind: 'string' }, default: '', doc: '', secret: true };
  t.equal(redactValue(secret, 's3cr3t'), REDACTED);
  t.equal(redactValue(secret, ''), '', 'an unset secret shows as unset');
  t.equal(redactValue(SCHEMA.NODE_NAME, 'plain'), 'plain');
});

t.test('JSON: value, source, where, raw per key', async (t) => {
  const loaded = await loadConfig({ env: { NNF_ENV_PROBE_DEADLINE: '2m' }, defaultConfigFile: null });
  const parsed = JSON.parse(renderConfigJson(loaded)) as { file: null; values: Record<string, { value: unknown; source: string; where: string; raw: string }> };
  t.equal(parsed.file, null);
  t.same(parsed.values.PROBE_DEADLINE, { value: 120_000, source: 'env', where: 'NNF_ENV_PROBE_DEADLINE', raw: '2m' });
  t.same(parsed.values.HOSTS_ALIASES, { value: ['local-rabbit'], source: 'default', where: 'default', raw: 'local-rabbit' });
  t.same(Object.keys(parsed.values), Object.keys(SCHEMA));
});

t.test('nnf-envd --print-config as a process: sources shown, credentials redacted', async (t) => {
  const dir = t.testdir({ 'site.conf': '# site\nRUNTIME_DIR=/srv/nnf-env\nKUBE_SERVER=https://u:topsecret@k8s:6443\n' });
  const file = join(dir, 'site.conf');
  const env = { PATH: process.env.PATH, NNF_ENV_PROBE_DEADLINE: '45s' };
  const r = spawnSync(process.execPath, [nnfEnvdBin, '--config', file, '--print-config', '--node-name', 'cn-9', '--probe-ports', 'no'], { env, encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^# config file: ${file}$`, 'm'));
  t.match(r.stdout, /^NODE_NAME\s+cn-9\s+--node-name$/m);
  t.match(r.stdout, /^PROBE_PORTS\s+false\s+--probe-ports$/m);
  t.match(r.stdout, /^PROBE_DEADLINE\s+45s\s+NNF_ENV_PROBE_DEADLINE$/m);
  t.match(r.stdout, new RegExp(`^RUNTIME_DIR\\s+/srv/nnf-env\\s+${file}:2$`, 'm'));
  t.match(r.stdout, /^SOCKET_PATH\s+\/srv\/nnf-env\/nnf-envd\.sock\s+default$/m);
  t.match(r.stdout, /^KUBE_SERVER\s+https:\/\/<redacted>@k8s:6443/m);
  t.notMatch(r.stdout + r.stderr, /topsecret/);

  const j = spawnSync(process.execPath, [nnfEnvdBin, '--config', file, '--print-config', '--json'], { env, encoding: 'utf8', timeout: 30_000 });
  t.equal(j.status, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { file: string; values: Record<string, { value: unknown; where: string }> };
  t.equal(parsed.file, file);
  t.equal(parsed.values.RUNTIME_DIR?.where, `${file}:2`);
  t.notMatch(j.stdout, /topsecret/);
});

t.test('nnf-envd with a bad configuration: one line per problem, exit 78', async (t) => {
  const dir = t.testdir({ 'bad.conf': 'LOG_LEVEL=chatty\nNODE_NAM=x\n' });
  const file = join(dir, 'bad.conf');
  const r = spawnSync(process.execPath, [nnfEnvdBin, '--config', file, '--print-config', '--gc-interval', '0s'], {
    env: { PATH: process.env.PATH, NNF_ENV_PROBE_PORTZ: '1' }, encoding: 'utf8', timeout: 30_000,
  });
  t.equal(r.status, 78);
  t.equal(r.stdout, '');
  t.same(r.stderr.trimEnd().split('\n'), [
    `nnf-envd: NODE_NAM in ${file}:2: unknown key (did you mean NODE_NAME?)`,
    'nnf-envd: NNF_ENV_PROBE_PORTZ in the environment: unknown variable (did you mean NNF_ENV_PROBE_PORTS?)',
    '--gc-interval=0s on the command line: out of range (allowed 1s to 24h)',
    `LOG_LEVEL=chatty in ${file}:1: not one of fatal, error, warn, info, debug, trace, silent`,
  ].map((l) => (l.startsWith('nnf-envd: ') ? l : `nnf-envd: ${l}`)).concat([
    'nnf-envd: hint: every key, its allowed values and default are documented in the example nnf-env.conf (etc/nnf-env/nnf-env.conf in the nnf-env package)',
  ]));
});
