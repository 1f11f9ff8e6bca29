import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { NnfEnvError } from '../../src/core/errors.js';
import { ConfigError, CONFIG_KEYS, loadConfig, normalizeFlagKey, parseConfigText, shortHostname } from '../../src/config/load.js';
import { jobsDirOf } from '../../src/contract/job-paths.js';
import type { LoadConfigOptions, LoadedConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';

/** Load with no default file and an empty environment unless the test gives them. */
function load(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  return loadConfig({ env: {}, defaultConfigFile: null, ...opts });
}

async function configError(t: Test, p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    t.ok(err instanceof ConfigError, 'a ConfigError');
    t.ok(err instanceof NnfEnvError, 'which is an NnfEnvError');
    return err as ConfigError;
  }
  t.fail('no error');
  throw new Error('expected a ConfigError');
}

t.test('defaults only: every key from SCHEMA, typed, with derived values', async (t) => {
  const loaded = await load({ hostname: 'compute-07.cluster.example' });
  t.equal(loaded.file, null);
  t.same(Object.keys(loaded.config).sort(), [...CONFIG_KEYS].sort());
  for (const key of CONFIG_KEYS) {
    t.same(loaded.sources[key], { source: 'default', where: 'default', raw: SCHEMA[key].default }, key);
  }
  const c = loaded.config;
  t.equal(c.NODE_NAME, 'compute-07', 'NODE_NAME: short hostname');
  t.equal(c.SOCKET_PATH, '/run/nnf-env/nnf-envd.sock', 'SOCKET_PATH: under RUNTIME_DIR');
  t.equal(c.PROBE_DEADLINE, 60_000, 'durations in ms');
  t.equal(c.PROBE_BACKOFF_INITIAL, 100);
  t.equal(c.WATCH_TIMEOUT, 300_000);
  t.equal(c.SOCKET_MODE, 0o660, 'mode parsed as octal');
  t.equal(c.PROBE_PORTS, true);
  t.equal(c.KUBE_INSECURE_SKIP_TLS_VERIFY, false);
  t.same(c.ENV_ALLOWED_PREFIXES, ['DW_', 'NNF_']);
  t.same(c.HOSTS_ALIASES, ['local-rabbit']);
  t.equal(c.ENV_MAX_TOTAL_BYTES, 1024 * 1024);
  t.equal(c.RABBIT_NAME, '', 'unset optional string is empty');
  t.equal(jobsDirOf(c.RUNTIME_DIR), '/run/nnf-env/jobs');
});

t.test('NODE_NAME default uses os.hostname() when none is given', async (t) => {
  const loaded = await load();
  t.equal(loaded.config.NODE_NAME, shortHostname(hostname()));
  t.notOk(loaded.config.NODE_NAME.includes('.'));
  t.equal(shortHostname('a.b.c'), 'a');
  t.equal(shortHostname('plain'), 'plain');
});

t.test('layers: default < file < env < flag, each remembered', async (t) => {
  const dir = t.testdir({
    'nnf-env.conf': [
      '# site settings',
      '',
      'NODE_NAME=from-file',
      'RUNTIME_DIR=/srv/nnf',
      'PROBE_DEADLINE=10s   # trailing comment',
      "LOG_LEVEL='debug'",
      'export WATCH_TIMEOUT=1h30m',
      'SOCKET_MODE=0600',
      '',
    ].join('\n'),
  });
  const file = join(dir, 'nnf-env.conf');
  const loaded = await load({
    configFile: file,
    env: { NNF_ENV_PROBE_DEADLINE: '20s', NNF_ENV_LOG_LEVEL: 'warn', PATH: '/bin', NNF_ENV_JOB_ID: 'f2', NNF_ENV_CONFIG: '/nonexistent' },
    argvFlags: { '--log-level': 'error', probeBackoffMax: '2s', PROBE_PORTS: false },
  });
  t.equal(loaded.file, file, 'the explicit file wins over NNF_ENV_CONFIG');
  const c = loaded.config;
  t.equal(c.NODE_NAME, 'from-file');
  t.same(loaded.sources.NODE_NAME, { source: 'file', where: `${file}:3`, raw: 'from-file' });
  t.equal(c.RUNTIME_DIR, '/srv/nnf');
  t.equal(c.SOCKET_PATH, '/srv/nnf/nnf-envd.sock', 'derived from the file\'s RUNTIME_DIR');
  t.equal(jobsDirOf(c.RUNTIME_DIR), '/srv/nnf/jobs');
  t.equal(c.PROBE_DEADLINE, 20_000, 'env beats file');
  t.same(loaded.sources.PROBE_DEADLINE, { source: 'env', where: 'NNF_ENV_PROBE_DEADLINE', raw: '20s' });
  t.equal(c.LOG_LEVEL, 'error', 'flag beats env');
  t.same(loaded.sources.LOG_LEVEL, { source: 'flag', where: '--log-level', raw: 'error' });
  t.equal(c.PROBE_BACKOFF_MAX, 2000, 'commander-style flag name');
  t.same(loaded.sources.PROBE_BACKOFF_MAX, { source: 'flag', where: '--probe-backoff-max', raw: '2s' });
  t.equal(c.PROBE_PORTS, false, 'boolean flag value');
  t.same(loaded.sources.PROBE_PORTS, { source: 'flag', where: '--probe-ports', raw: 'false' });
  t.equal(c.WATCH_TIMEOUT, 5_400_000, 'export prefix and compound duration');
  t.same(loaded.sources.WATCH_TIMEOUT, { source: 'file', where: `${file}:7`, raw: '1h30m' });
  t.equal(c.SOCKET_MODE, 0o600);
  t.same(loaded.sources.GC_INTERVAL, { source: 'default', where: 'default', raw: '15m' });
});

t.test('NNF_ENV_CONFIG names the file; the default file is read when present', async (t) => {
  const dir = t.testdir({ 'a.conf': 'NODE_NAME=a\n', 'default.conf': '\n\nNODE_NAME=d\n' });
  const viaEnv = await load({ env: { NNF_ENV_CONFIG: join(dir, 'a.conf') }, defaultConfigFile: join(dir, 'default.conf') });
  t.equal(viaEnv.file, join(dir, 'a.conf'));
  t.equal(viaEnv.config.NODE_NAME, 'a');
  const viaDefault = await load({ defaultConfigFile: join(dir, 'default.conf') });
  t.equal(viaDefault.file, join(dir, 'default.conf'));
  t.equal(viaDefault.sources.NODE_NAME.where, `${join(dir, 'default.conf')}:3`);
  const noDefault = await load({ defaultConfigFile: join(dir, 'absent.conf') });
  t.equal(noDefault.file, null, 'a missing default file is fine');
});

t.test('a missing or unreadable file that was asked for is an error', async (t) => {
  const dir = t.testdir({ sub: {} });
  let err = await configError(t, load({ configFile: join(dir, 'nope.conf') }));
  t.equal(err.code, 'CONFIG_FILE_UNREADABLE');
  t.equal(err.message, `config file ${join(dir, 'nope.conf')} (from --config) does not exist`);
  err = await configError(t, load({ env: { NNF_ENV_CONFIG: join(dir, 'nope.conf') } }));
  t.equal(err.message, `config file ${join(dir, 'nope.conf')} (from NNF_ENV_CONFIG) does not exist`);
  err = await configError(t, load({ defaultConfigFile: join(dir, 'nope.conf'), required: true }));
  t.equal(err.message, `config file ${join(dir, 'nope.conf')} (the default config file) does not exist`);
  err = await configError(t, load({ configFile: join(dir, 'sub') }));
  t.equal(err.message, `config file ${join(dir, 'sub')} (from --config) is a directory, not a file`);
  t.match(err.describe(), /documented in the example nnf-env\.conf/, 'the hint says where keys are documented');
  t.equal(err.exitCode, 78);
});

t.test('a file that is not readable by this user', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, async (t) => {
  const dir = t.testdir({ 'secret.conf': 'NODE_NAME=x\n' });
  await chmod(join(dir, 'secret.conf'), 0o000);
  const err = await configError(t, load({ configFile: join(dir, 'secret.conf') }));
  t.match(err.message, /is not readable \(permission denied/);
});

t.test('a bad value in the file names key, file:line and what is allowed', async (t) => {
  const dir = t.testdir({
    'nnf-env.conf': ['# comment', 'NODE_NAME=ok', '', '', '', '', '', '', '', '', '', 'PROBE_DEADLINE=abc', ''].join('\n'),
  });
  const file = join(dir, 'nnf-env.conf');
  const err = await configError(t, load({ configFile: file }));
  t.equal(err.code, 'CONFIG_INVALID');
  t.equal(err.message, `PROBE_DEADLINE=abc in ${file}:12: not a duration (use e.g. 250ms, 30s, 5m, 1h; allowed 0s to 1h)`);
  t.equal(err.problems.length, 1);
});

t.test('bad values from env and flags name the variable or flag', async (t) => {
  let err = await configError(t, load({ env: { NNF_ENV_PROBE_DEADLINE: '2h' } }));
  t.equal(err.message, 'NNF_ENV_PROBE_DEADLINE=2h in the environment: out of range (allowed 0s to 1h)');
  err = await configError(t, load({ argvFlags: { '--list-page-size': 'lots' } }));
  t.equal(err.message, '--list-page-size=lots on the command line: not an integer (allowed 1 to 10000)');
  err = await configError(t, load({ argvFlags: { listPageSize: '0' } }));
  t.equal(err.message, '--list-page-size=0 on the command line: out of range (allowed 1 to 10000)');
});

t.test('every kind of value is checked with a message that says what is allowed', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['PROBE_PORTS', 'maybe', 'NNF_ENV_PROBE_PORTS=maybe in the environment: not a boolean (use true or false; yes/no, on/off, 1/0 also work)'],
    ['LOG_FORMAT', 'xml', 'NNF_ENV_LOG_FORMAT=xml in the environment: not one of auto, json, pretty'],
    ['RUNTIME_DIR', 'run/nnf', 'NNF_ENV_RUNTIME_DIR=run/nnf in the environment: not an absolute path (allowed: an absolute path)'],
    ['RUNTIME_DIR', '', 'NNF_ENV_RUNTIME_DIR="" in the environment: must not be empty (allowed: an absolute path)'],
    ['SOCKET_MODE', '0999', 'NNF_ENV_SOCKET_MODE=0999 in the environment: not an octal file mode (e.g. 0660, 0600)'],
    ['WLM_ID', '', 'NNF_ENV_WLM_ID="" in the environment: must not be empty (allowed: any non-empty text)'],
    ['ENV_MAX_VARIABLES', '1.5', 'NNF_ENV_ENV_MAX_VARIABLES=1.5 in the environment: not an integer (allowed 1 to 100000)'],
    ['WATCH_TIMEOUT', '500ms', 'NNF_ENV_WATCH_TIMEOUT=500ms in the environment: out of range (allowed 1s to 2h)'],
    ['NODE_NAME', 'two words', 'NNF_ENV_NODE_NAME="two words" in the environment: must not contain whitespace or "/"'],
    ['RABBIT_ADDRESS', 'rabbit-1', 'NNF_ENV_RABBIT_ADDRESS=rabbit-1 in the environment: not an IPv4 or IPv6 address (write IPv6 without brackets)'],
    ['RABBIT_ADDRESS', '[::1]', 'NNF_ENV_RABBIT_ADDRESS=[::1] in the environment: not an IPv4 or IPv6 address (write IPv6 without brackets)'],
    ['KUBE_SERVER', 'ftp://x', 'NNF_ENV_KUBE_SERVER=ftp://x in the environment: not an API server address (use https://host:port or host:port)'],
    ['KUBE_SERVER', 'host:99999', 'NNF_ENV_KUBE_SERVER=host:99999 in the environment: not an API server address (use https://host:port or host:port)'],
    ['HOSTS_ALIASES', 'local-rabbit,bad_name!', 'NNF_ENV_HOSTS_ALIASES=local-rabbit,bad_name! in the environment: not a valid host name: bad_name!'],
    ['ENV_ALLOWED_PREFIXES', 'DW_,1X', 'NNF_ENV_ENV_ALLOWED_PREFIXES=DW_,1X in the environment: not a variable name prefix (letters, digits, _): 1X'],
    ['WORKFLOW_NAME_TEMPLATE', 'fluxjob', 'NNF_ENV_WORKFLOW_NAME_TEMPLATE=fluxjob in the environment: has no job id placeholder, so every job would get the same workflow (use {jobid.dec}, {jobid.f58plain}, {jobid.hex})'],
    ['WORKFLOW_NAME_TEMPLATE', 'job-{jobid}', 'NNF_ENV_WORKFLOW_NAME_TEMPLATE=job-{jobid} in the environment: unknown placeholder {jobid} (allowed {jobid.dec}, {jobid.f58plain}, {jobid.hex})'],
    ['NODE_NAME', 'a\u0007b', 'NNF_ENV_NODE_NAME="a\\u0007b" in the environment: contains a control character'],
  ];
  for (const [key, value, message] of cases) {
    const err = await configError(t, load({ env: { ['NNF_ENV_' + key]: value } }));
    t.equal(err.message, message, `${key}=${JSON.stringify(value)}`);
  }
});

t.test('accepted spellings', async (t) => {
  const c = (await load({
    env: {
      NNF_ENV_PROBE_PORTS: 'Off',
      NNF_ENV_WORKFLOW_TOKEN: 'yes',
      NNF_ENV_PROBE_DEADLINE: '90',
      NNF_ENV_PROBE_ATTEMPT_TIMEOUT: '1.5',
      NNF_ENV_LOG_FORMAT: 'JSON',
      NNF_ENV_HOSTS_ALIASES: ' local-rabbit , rabbit.local ,,',
      NNF_ENV_SOCKET_MODE: '660',
      NNF_ENV_RABBIT_ADDRESS: 'fd00::1',
      NNF_ENV_KUBE_SERVER: '10.0.0.1:6443',
      NNF_ENV_HOSTS_FILE: '',
    },
  })).config;
  t.equal(c.PROBE_PORTS, false);
  t.equal(c.WORKFLOW_TOKEN, true);
  t.equal(c.PROBE_DEADLINE, 90_000, 'plain number is seconds');
  t.equal(c.PROBE_ATTEMPT_TIMEOUT, 1500);
  t.equal(c.LOG_FORMAT, 'json', 'enum case-insensitive, canonical spelling');
  t.same(c.HOSTS_ALIASES, ['local-rabbit', 'rabbit.local']);
  t.equal(c.SOCKET_MODE, 0o660);
  t.equal(c.RABBIT_ADDRESS, 'fd00::1');
  t.equal(c.KUBE_SERVER, '10.0.0.1:6443');
  t.equal(c.HOSTS_FILE, '', 'optional path may be emptied');
});

t.test('unknown keys: file, environment and flags, with suggestions', async (t) => {
  const dir = t.testdir({ 'nnf-env.conf': 'NODE_NAME=n\nPROBE_DEADLIN=5s\nNNF_ENV_RABBIT_NAME=r\nCOMPLETELY_UNRELATED_THING=1\n' });
  const file = join(dir, 'nnf-env.conf');
  const err = await configError(t, load({
    configFile: file,
    env: { NNF_ENV_NODENAME: 'x', NNF_ENV_FIXTURES: '/x', NNF_ENV_JOB_ID: 'f2' },
    argvFlags: { '--watch-timout': '5m' },
  }));
  t.equal(err.code, 'CONFIG_UNKNOWN_KEY');
  t.same(err.problems.map((p) => p.message), [
    `PROBE_DEADLIN in ${file}:2: unknown key (did you mean PROBE_DEADLINE?)`,
    `NNF_ENV_RABBIT_NAME in ${file}:3: unknown key (did you mean RABBIT_NAME? keys are written without the NNF_ENV_ prefix in the file)`,
    `COMPLETELY_UNRELATED_THING in ${file}:4: unknown key`,
    'NNF_ENV_NODENAME in the environment: unknown variable (did you mean NNF_ENV_NODE_NAME?)',
    '--watch-timout on the command line: unknown option (did you mean --watch-timeout?)',
  ], 'NNF_ENV_JOB_ID and NNF_ENV_FIXTURES are not config keys but allowed');
  t.equal(err.message, `5 configuration problems: ${err.problems.map((p) => p.message).join('; ')}`);
});

t.test('lines that are not KEY=value are reported with their line', async (t) => {
  const dir = t.testdir({ 'nnf-env.conf': 'NODE_NAME=n\nPROBE_DEADLINE 5s\n  # indented comment\n\r\nLOG_LEVEL=debug\n' });
  const file = join(dir, 'nnf-env.conf');
  const err = await configError(t, load({ configFile: file }));
  t.equal(err.code, 'CONFIG_SYNTAX');
  t.equal(err.message, `"PROBE_DEADLINE 5s" in ${file}:2: not a KEY=value line`);
  const parsed = parseConfigText('A=1\r\nB="two\nlines"\nC=3\n', 'f');
  t.same([...parsed.entries].map(([k, v]) => [k, v.raw, v.line]), [['A', '1', 1], ['B', 'two\nlines', 2], ['C', '3', 4]], 'multi-line quoted value: next key on the right line');
  t.same(parsed.problems, []);
});

t.test('all problems are reported together', async (t) => {
  const dir = t.testdir({ 'nnf-env.conf': 'PROBE_DEADLINE=abc\nLOG_LEVEL=loud\nNOPE=1\n' });
  const file = join(dir, 'nnf-env.conf');
  const err = await configError(t, load({ configFile: file, env: { NNF_ENV_SOCKET_MODE: 'rw' }, argvFlags: { GC_INTERVAL: 'never' } }));
  t.equal(err.code, 'CONFIG_INVALID', 'mixed kinds');
  t.same(err.problems.map((p) => p.message), [
    `NOPE in ${file}:3: unknown key`,
    'NNF_ENV_SOCKET_MODE=rw in the environment: not an octal file mode (e.g. 0660, 0600)',
    `PROBE_DEADLINE=abc in ${file}:1: not a duration (use e.g. 250ms, 30s, 5m, 1h; allowed 0s to 1h)`,
    '--gc-interval=never on the command line: not a duration (use e.g. 250ms, 30s, 5m, 1h; allowed 1s to 24h)',
    `LOG_LEVEL=loud in ${file}:2: not one of fatal, error, warn, info, debug, trace, silent`,
  ], 'unknown keys first, then values in schema order');
  t.match(err.message, /^5 configuration problems: NOPE in /);
});

t.test('an initial backoff above its maximum is refused, naming both sources', async (t) => {
  const err = await configError(t, load({ env: { NNF_ENV_BACKOFF_INITIAL: '1m' } }));
  t.equal(err.message, 'NNF_ENV_BACKOFF_INITIAL=1m in the environment: more than BACKOFF_MAX=30s (built-in default); BACKOFF_INITIAL must not exceed BACKOFF_MAX');
  const ok = await load({ env: { NNF_ENV_BACKOFF_INITIAL: '1m' }, argvFlags: { BACKOFF_MAX: '2m' } });
  t.equal(ok.config.BACKOFF_INITIAL, 60_000);
});

t.test('explicit SOCKET_PATH and NODE_NAME are kept', async (t) => {
  const c = (await load({ env: { NNF_ENV_SOCKET_PATH: '/tmp/x.sock', NNF_ENV_NODE_NAME: 'n1' }, hostname: 'other' })).config;
  t.equal(c.SOCKET_PATH, '/tmp/x.sock');
  t.equal(c.NODE_NAME, 'n1');
});

t.test('reload reads the file again with the same options', async (t) => {
  const dir = t.testdir({ 'nnf-env.conf': 'LOG_LEVEL=info\n' });
  const file = join(dir, 'nnf-env.conf');
  const first = await load({ configFile: file });
  await writeFile(file, 'LOG_LEVEL=debug\n');
  const second = await first.reload?.();
  t.equal(first.config.LOG_LEVEL, 'info');
  t.equal(second?.config.LOG_LEVEL, 'debug');
});

t.test('flag names in every spelling', async (t) => {
  t.equal(normalizeFlagKey('--node-name'), 'NODE_NAME');
  t.equal(normalizeFlagKey('nodeName'), 'NODE_NAME');
  t.equal(normalizeFlagKey('NODE_NAME'), 'NODE_NAME');
  t.equal(normalizeFlagKey('kubeCaFile'), 'KUBE_CA_FILE');
  t.equal(normalizeFlagKey('kubeconfig'), 'KUBECONFIG');
  const c = (await load({ argvFlags: { 'node-name': 'a', kubeInsecureSkipTlsVerify: true, '--kube-ca-file': '/ca.pem', unused: undefined } })).config;
  t.equal(c.NODE_NAME, 'a');
  t.equal(c.KUBE_INSECURE_SKIP_TLS_VERIFY, true);
  t.equal(c.KUBE_CA_FILE, '/ca.pem');
});

t.test('the file is read as dotenv reads it (quotes, comments, CRLF)', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'x.conf');
  await mkdir(dir, { recursive: true });
  await writeFile(file, 'NODE_NAME="quoted"\r\nWLM_ID=flux # the scheduler\r\nWORKFLOW_NAMESPACE=\'ns\'\r\n');
  const loaded = await load({ configFile: file });
  t.equal(loaded.config.NODE_NAME, 'quoted');
  t.equal(loaded.config.WLM_ID, 'flux');
  t.equal(loaded.config.WORKFLOW_NAMESPACE, 'ns');
  t.equal(loaded.sources.WORKFLOW_NAMESPACE.where, `${file}:3`);
  t.equal(loaded.sources.WORKFLOW_NAMESPACE.raw, 'ns');
});
