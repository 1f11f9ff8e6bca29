// The Flux job-shell plugin in a real Lua VM (wasmoon, Lua 5.4), against env files written by
// the real renderEnvFile/statusFacts, plus a static check that it stays within Lua 5.1.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { formatJobId, MAX_JOBID, parseJobId } from '../../src/contract/jobid.js';
import { jobFiles } from '../../src/contract/job-paths.js';
import { parseEnvFileWithFacts, renderEnvFile, statusFacts } from '../../src/contract/env-file.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { LuaPluginHarness, PLUGIN_SOURCE_PATH } from './harness.js';
import { nastyEnvValues, REJECTED_ENV_VALUES } from './nasty-values.js';

const JOBS = '/run/nnf-env/jobs';
const ID = 321103304048246784n; // fkEPGJX8vhd
const F58 = formatJobId(ID, 'f58');
const envPath = (id: bigint, dir = JOBS): string => jobFiles(dir, id).env;

const harness = await LuaPluginHarness.create();

function status(over: Partial<JobStatus> = {}): JobStatus {
  return {
    version: 1,
    job: { id: 'fkEPGJX8vhd', dec: ID.toString(), userID: 1050 },
    workflow: { namespace: 'default', name: `fluxjob-${ID}`, state: 'PreRun', ready: true, status: 'Completed', message: '' },
    phase: 'delivered',
    error: null,
    variables: [],
    rejected: [],
    rabbit: { name: 'rabbit-node-1', address: '10.0.0.1' },
    ports: null,
    timings: { trackedAt: '2026-01-01T00:00:00Z' },
    ...over,
  };
}

const header = (id: bigint): string => `nnf-env: job ${formatJobId(id, 'f58plain')} workflow default/fluxjob-${id} (generated, do not edit)`;

t.test('static check: nothing beyond Lua 5.1', async (t) => {
  const source = readFileSync(PLUGIN_SOURCE_PATH, 'utf8');
  const code = stripLuaCommentsAndStrings(source);
  const forbidden: Array<[RegExp, string]> = [
    [/\/\//, 'integer division //'],
    [/&/, 'bitwise and &'],
    [/\|/, 'bitwise or |'],
    [/~(?!=)/, 'bitwise xor/not ~'],
    [/<<|>>/, 'shifts'],
    [/\bgoto\b/, 'goto'],
    [/::/, 'goto labels'],
    [/\butf8\./, 'utf8 library'],
    [/string\.pack|string\.unpack|\.pack\s*\(|:pack\s*\(/, 'string.pack'],
    [/\btable\.(unpack|move|pack)\b|\bunpack\s*\(/, 'table.unpack/move/pack (5.1: unpack)'],
    [/\bloadstring\b|\bload\s*\(/, 'load/loadstring'],
    [/\bsetfenv\b|\bgetfenv\b|_ENV/, 'environments'],
    [/\bbit32\b|\bbit\./, 'bit libraries'],
    [/\bmath\.(tointeger|ult|maxinteger|mininteger)\b/, '5.3 math'],
    [/\b0x[0-9a-fA-F]*\.|\bp[+-]?\d/, 'hex floats'],
  ];
  for (const [re, what] of forbidden) t.notMatch(code, re, `no ${what}`);
  t.match(code, /math\.type and math\.type/, 'math.type is only used when it exists');
  // Escapes and pattern classes that 5.1 does not know, inside strings.
  t.notMatch(source, /\\x[0-9a-fA-F]{2}|\\u\{|\\z/, 'no \\x, \\u{} or \\z string escapes (5.2+)');
  t.notMatch(source, /%g/, 'no %g pattern class (5.2+)');
  t.notMatch(source, /string\.rep\([^)]*,[^)]*,/, 'no string.rep separator (5.2+)');
  // The stripper itself: code is checked, comments and strings are not.
  t.equal(stripLuaCommentsAndStrings('a = b // c -- d // e\nf = "g // h" .. \'i|j\' --[[ k & l ]] m'), 'a = b // c \nf = "" .. ""   m');
});

function stripLuaCommentsAndStrings(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i);
    const long = /^(--)?\[(=*)\[/.exec(rest);
    if (long) {
      const close = `]${long[2]}]`;
      const end = src.indexOf(close, i + long[0].length);
      i = end < 0 ? src.length : end + close.length;
      out += ' ';
      continue;
    }
    if (rest.startsWith('--')) {
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl;
      continue;
    }
    const c = src[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      i = j + 1;
      out += '""';
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

t.test('registers one shell.init handler', async (t) => {
  const r = await harness.run({ env: {} });
  t.same(r.registered, ['nnf-env']);
  t.same(r.topics, ['shell.init']);
  t.same(r.errors, []);
});

t.test('every nasty value arrives byte for byte; warnings logged', async (t) => {
  const values = nastyEnvValues('/tmp/nnf-env-canary');
  const vars: Record<string, string> = {};
  values.forEach((v, i) => (vars[`NNF_T_${String(i).padStart(4, '0')}`] = v));
  vars.NNF_ENV_LOCAL_RABBIT = 'rabbit-node-1';
  vars.NNF_ENV_JOB_ID = 'fkEPGJX8vhd';
  const facts = statusFacts(status({
    rejected: [{ name: 'LD_PRELOAD', reason: 'prefix-not-allowed' }],
    ports: { target: 'rabbit-node-1', address: '10.0.0.1', results: [
      { port: 4001, reachable: false, attempts: 12, timeToFirstSuccessMs: null, lastError: 'connect ECONNREFUSED 10.0.0.1:4001' },
    ] },
  }));
  await harness.writeFile(envPath(ID), renderEnvFile(vars, header(ID), facts));

  const r = await harness.run({ env: { FLUX_JOB_ID: F58 }, info: { rank: 0 } });
  const r51 = await harness.run({ env: { FLUX_JOB_ID: F58 }, info: { rank: 0 }, lua51Library: true });
  t.same(r51.calls, r.calls, 'same calls with only the Lua 5.1 library');
  t.same(r.errors, [], 'no errors');
  t.same(r.dies, []);
  const names = Object.keys(vars).sort();
  t.same(r.setenv.map((s) => s.name), names, 'every variable, in file (sorted) order');
  let same = 0;
  for (const s of r.setenv) {
    if (s.value.equals(Buffer.from(vars[s.name]!, 'utf8'))) same++;
    else t.fail(`${s.name} differs`);
  }
  t.equal(same, names.length, `${same} values byte-for-byte`);
  t.ok(r.setenv.every((s) => s.overwrite === 'number:1'), 'overwrite passed as the number 1 (flux reads it with lua_tointeger)');
  t.same(r.logs, [
    'nnf-env: 1 variable of workflow default/fluxjob-321103304048246784 not set: LD_PRELOAD (prefix-not-allowed)',
    'nnf-env: user container port 4001 (connect ECONNREFUSED 10.0.0.1:4001) on rabbit-node-1 (10.0.0.1) not reachable from this node',
  ]);
});

t.test('job id spellings: ƒ, f, decimal; whitespace; shell.info fallback', async (t) => {
  const ids = [0n, 1n, 57n, 58n, 1234n, ID + 7n, MAX_JOBID, 6787342413402046n];
  for (const id of ids) await harness.writeFile(envPath(id), renderEnvFile({ NNF_ENV_JOB_ID: formatJobId(id, 'f58plain') }, header(id)));
  for (const id of ids) {
    const want = formatJobId(id, 'f58plain');
    const spellings = [formatJobId(id, 'f58'), want, id.toString(), ` ${want}\n`, '00' + id.toString(), 'f111' + want.slice(1)];
    for (const s of spellings) {
      const r = await harness.run({ env: { FLUX_JOB_ID: s } });
      t.same(r.setenv.map((x) => x.value.toString()), [want], `FLUX_JOB_ID=${JSON.stringify(s)} finds ${want}.env`);
      t.same(r.errors, []);
    }
  }
  // No FLUX_JOB_ID: shell.info.jobid, exact as a string or as a number below 2^53.
  const small = await harness.run({ env: {}, info: { jobid: 1234 } });
  t.same(small.setenv.map((x) => x.value.toString()), ['fNH'], 'info.jobid number');
  const other = ID + 1000n;
  const str = await harness.run({ env: {}, info: { jobid: formatJobId(other, 'f58') } });
  t.same(str.setenv.map((x) => x.value.toString()), [], 'no file for this id yet');
  await harness.writeFile(envPath(other), renderEnvFile({ A: 'x' }, header(other)));
  const str2 = await harness.run({ env: {}, info: { jobid: formatJobId(other, 'f58') } });
  t.same(str2.setenv.map((x) => x.name), ['A'], 'info.jobid string');
  // Lua 5.1/5.2/LuaJIT: no math.type, the number is a double, exact only below 2^53.
  const dbl = await harness.run({ env: {}, info: { jobid: 1234 }, lua51Library: true });
  t.same(dbl.setenv.map((x) => x.value.toString()), ['fNH'], 'info.jobid number without math.type');
  const big = await harness.run({ env: {}, info: { jobid: 2 ** 60 }, lua51Library: true });
  t.same([big.setenv, big.errors], [[], []], 'inexact double id: not guessed');
  const none = await harness.run({ env: {}, info: 'throws' });
  t.same(none.calls.filter((c) => c.kind !== 'getenv' && c.kind !== 'register' && c.kind !== 'topic'), [], 'no id at all: silent');
});

t.test('Lua F58 conversion agrees with formatJobId for random 64-bit ids', async (t) => {
  const ids = [0n, 1n, 57n, 58n, 3364n, MAX_JOBID, MAX_JOBID - 1n, 1n << 53n, (1n << 53n) + 1n,
    ...Array.from({ length: 1500 }, () => randomBytes(8).readBigUInt64BE())];
  const inputs = ids.flatMap((id) => [id.toString(), formatJobId(id, 'f58'), formatJobId(id, 'f58plain')]);
  const results = await harness.callInternal('jobid_to_f58plain', inputs);
  let same = 0;
  results.forEach((r, i) => {
    const want = formatJobId(ids[Math.floor(i / 3)]!, 'f58plain');
    if (r[0]?.toString() === want) same++;
    else t.fail(`${inputs[i]} -> ${r[0]?.toString() ?? 'nil'} (${r[1]?.toString()}), want ${want}`);
  });
  t.equal(same, inputs.length, `${same} conversions agree`);

  const bad = ['', ' ', '18446744073709551616', '99999999999999999999', '123456789012345678901', 'fjpXCZedGfVR', 'f', '\u0192',
    'f0', 'fO', 'fl', 'fI', 'f../../etc/passwd', '../x', 'f2/../x', '0x1234', '0000.0000.0000.0001',
    'academy-academy-academy--academy-academy-academy', '\u{1F603}', '-1', 'f2 3', 'F2', 'x'.repeat(300)];
  const rejected = await harness.callInternal('jobid_to_f58plain', bad);
  rejected.forEach((r, i) => {
    t.equal(r[0], null, `rejects ${JSON.stringify(bad[i]!.slice(0, 30))}`);
    t.ok(r[1] && r[1].length > 0, 'with a reason');
  });
});

t.test('Lua line parser agrees with parseEnvFile', async (t) => {
  const lines: string[] = [];
  const values = [...nastyEnvValues('/c'), ...REJECTED_ENV_VALUES.map(([v]) => v)];
  for (const v of values) {
    lines.push(`A='${v}'`, `A="${v}"`, `A=${v}`, `# nnf-env:warning=${v}`, `# ${v}`);
  }
  lines.push('', '#', '# nnf-env:', '# nnf-env:Key=x', '# nnf-env:key=', '# nnf-env: key=x', 'A=', "A=''", 'A=""', "A='", "A='x' ", " A='x'",
    "export A='x'", "1A='x'", "_='x'", "a_B9='x'", "A-B='x'", 'garbage', "A='x\\'", "A=\"'\\\"", "A=\"it's\"", "A=\"its\"");
  // Byte-level oddities only the Lua side sees as bytes: invalid UTF-8 and overlong forms.
  const raw: Buffer[] = lines.map((l) => Buffer.from(l, 'utf8'));
  for (const bytes of [[0xff], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xc2, 0x85], [0xf0, 0x9f, 0x98, 0x83]]) {
    raw.push(Buffer.concat([Buffer.from("A='"), Buffer.from(bytes), Buffer.from("'")]));
  }
  const results = await harness.callInternal('parse_line', raw);
  let agree = 0;
  raw.forEach((line, i) => {
    const r = results[i]!;
    let want: string;
    try {
      const parsed = parseEnvFileWithFacts(Buffer.concat([line, Buffer.from('\n')]), 'x');
      const [name, value] = Object.entries(parsed.vars)[0] ?? [];
      const fact = parsed.facts[0];
      want = name !== undefined ? `var ${name} ${hexOf(value!)}` : fact ? `fact ${fact.key} ${hexOf(fact.value)}` : 'skip';
    } catch {
      want = 'bad';
    }
    const kind = r[0]?.toString() ?? 'bad';
    const got = kind === 'var' || kind === 'fact' ? `${kind} ${r[1]!.toString()} ${r[2]!.toString('hex')}` : kind;
    if (got === want) agree++;
    else t.fail(`line ${JSON.stringify(line.toString('latin1').slice(0, 50))}: Lua ${got.slice(0, 80)}, TS ${want.slice(0, 80)}`);
  });
  t.equal(agree, raw.length, `${agree} lines parsed alike`);
});

const hexOf = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

t.test('no file: silent and cheap', async (t) => {
  const r = await harness.run({ env: { FLUX_JOB_ID: formatJobId(424242n, 'f58') }, info: { rank: 0 } });
  t.same(r.setenv, []);
  t.same(r.logs, []);
  t.same(r.errors, []);
  t.same(r.getenv, ['FLUX_JOB_ID', 'NNF_ENV_JOBS_DIR', 'NNF_ENV_RUNTIME_DIR', 'NNF_ENV_CONFIG'], 'four getenv calls, the config file and one failed open');
  const noDir = await harness.run({ env: { FLUX_JOB_ID: F58 }, jobsDir: '/does/not/exist' });
  t.same([noDir.setenv, noDir.logs, noDir.errors], [[], [], []], 'missing jobs dir: silent');
});

t.test('jobs dir: NNF_ENV_JOBS_DIR, then the plugin config, then the default', async (t) => {
  const id = 777n;
  await harness.writeFile(envPath(id, '/alt/jobs'), renderEnvFile({ WHERE: 'alt' }, ''));
  await harness.writeFile(envPath(id, '/conf/jobs'), renderEnvFile({ WHERE: 'conf' }, ''));
  await harness.writeFile(envPath(id), renderEnvFile({ WHERE: 'default' }, ''));
  const where = async (env: Record<string, string>, jobsDir?: string): Promise<string[]> =>
    (await harness.run(jobsDir === undefined ? { env } : { env, jobsDir })).setenv.map((s) => s.value.toString());
  t.same(await where({ FLUX_JOB_ID: 'f' + formatJobId(id, 'f58plain').slice(1) }), ['default']);
  t.same(await where({ FLUX_JOB_ID: id.toString() }, '/conf/jobs'), ['conf']);
  t.same(await where({ FLUX_JOB_ID: id.toString(), NNF_ENV_JOBS_DIR: '/alt/jobs' }, '/conf/jobs'), ['alt']);
  const rel = await harness.run({ env: { FLUX_JOB_ID: id.toString(), NNF_ENV_JOBS_DIR: 'relative/dir' } });
  t.same(rel.setenv.map((s) => s.value.toString()), ['default'], 'relative NNF_ENV_JOBS_DIR ignored');
  t.match(rel.errors, [/ignoring NNF_ENV_JOBS_DIR/]);
});

t.test('corrupt file: bad lines reported with file and line, good ones set, no crash', async (t) => {
  const id = 9001n;
  const path = envPath(id);
  const good = renderEnvFile({ A: 'one', B: "it's" }, header(id), { phase: 'delivered' });
  const text = good + "C=unquoted\nD='ok'\nD='again'\nE=\"bad $x'\"\n\r\nF='tab\there'\n" + "G='no newline";
  await harness.writeFile(path, text);
  const r = await harness.run({ env: { FLUX_JOB_ID: formatJobId(id, 'f58') } });
  t.same(r.setenv.map((s) => `${s.name}=${s.value.toString()}`), ['A=one', "B=it's", 'D=ok']);
  const n = good.split('\n').length - 1;
  t.same(r.errors, [
    `nnf-env: ${path}:${n + 1}: value of C is not quoted as the format requires (line skipped)`,
    `nnf-env: ${path}:${n + 3}: D appears again (first on line ${n + 2}) (line skipped)`,
    `nnf-env: ${path}:${n + 4}: value of E is not quoted as the format requires (line skipped)`,
    `nnf-env: ${path}:${n + 5}: control character in line (line skipped)`,
    `nnf-env: ${path}:${n + 6}: control character in line (line skipped)`,
    `nnf-env: ${path}:${n + 7}: last line has no newline (truncated file?) (line skipped)`,
  ]);
  t.same(r.dies, [], 'never shell.die');
});

t.test('many bad lines: ten reported, the rest counted', async (t) => {
  const id = 9002n;
  await harness.writeFile(envPath(id), 'bad\n'.repeat(25) + "OK='yes'\n");
  const r = await harness.run({ env: { FLUX_JOB_ID: id.toString() } });
  t.equal(r.errors.length, 11);
  t.match(r.errors[10], /15 more bad lines skipped/);
  t.same(r.setenv.map((s) => s.name), ['OK']);
});

t.test('garbage and unreadable files never crash the shell', async (t) => {
  const rand = randomBytes(200_000);
  const id = 9003n;
  await harness.writeFile(envPath(id), rand);
  const r = await harness.run({ env: { FLUX_JOB_ID: id.toString() } });
  t.same(r.dies, []);
  t.ok(r.errors.length > 0 && r.errors.length <= 11, `${r.errors.length} error lines`);
  t.notOk(r.errors.some((e) => /internal error/.test(e)), 'no internal error');

  // A directory where the file should be: open or read fails, reported once.
  const dirId = 9004n;
  await harness.mkdir(envPath(dirId));
  const d = await harness.run({ env: { FLUX_JOB_ID: dirId.toString() } });
  t.same(d.dies, []);
  t.equal(d.errors.length, 1);
  t.match(d.errors[0], /^nnf-env: cannot read .*f[1-9A-Za-z]+\.env/);

  // shell.setenv failing for one variable does not stop the others.
  const id2 = 9005n;
  await harness.writeFile(envPath(id2), renderEnvFile({ A: '1', B: '2', C: '3' }, ''));
  const s = await harness.run({ env: { FLUX_JOB_ID: id2.toString() }, setenvFails: ['B'] });
  t.same(s.setenv.map((x) => x.name), ['A', 'B', 'C']);
  t.same(s.errors, ['nnf-env: cannot set B: Invalid argument']);

  // A job id that cannot be a file name is reported, and nothing is opened.
  const evil = await harness.run({ env: { FLUX_JOB_ID: 'f../../../etc/passwd' } });
  t.same(evil.setenv, []);
  t.match(evil.errors, [/FLUX_JOB_ID: job id has characters that are not base58/]);
});

t.test('warnings: failed workflow once (rank 0), node warnings on every rank', async (t) => {
  const id = 9006n;
  const facts = statusFacts(status({
    phase: 'failed',
    error: { code: 'WORKFLOW_ERROR', message: 'PreRun: container failed to start: ImagePullBackOff' },
    ports: { target: 'rabbit-node-1', address: 'fd00::1', results: [
      { port: 4000, reachable: false, attempts: 9, timeToFirstSuccessMs: null, lastError: 'timeout' },
    ] },
  }));
  await harness.writeFile(envPath(id), renderEnvFile({ NNF_ENV_LOCAL_RABBIT: 'rabbit-node-1' }, header(id), facts));
  const jobWide = 'nnf-env: workflow default/fluxjob-321103304048246784 failed, its variables are not set: PreRun: container failed to start: ImagePullBackOff';
  const node = 'nnf-env: user container port 4000 (timeout) on rabbit-node-1 (fd00::1) not reachable from this node';
  const rank0 = await harness.run({ env: { FLUX_JOB_ID: id.toString() }, info: { rank: 0 } });
  t.same(rank0.logs, [jobWide, node]);
  t.same(rank0.setenv.map((s) => s.name), ['NNF_ENV_LOCAL_RABBIT']);
  const rank3 = await harness.run({ env: { FLUX_JOB_ID: id.toString() }, info: { rank: 3 } });
  t.same(rank3.logs, [node], 'job-wide warning only from rank 0');
  const noInfo = await harness.run({ env: { FLUX_JOB_ID: id.toString() }, info: 'throws' });
  t.same(noInfo.logs, [jobWide, node], 'rank unknown: said rather than lost');
  t.same(noInfo.errors, []);
});

t.test('the plugin source itself runs where flux puts it', async (t) => {
  // parseJobId and the plugin agree on the example id of docs/FORMATS.md.
  t.equal(formatJobId(parseJobId('321103304048246784'), 'f58plain'), 'fkEPGJX8vhd');
  const r = await harness.callInternal('dec_to_b58', ['321103304048246784', '0', '57', '58']);
  t.same(r.map((x) => x[0]?.toString()), ['kEPGJX8vhd', '1', 'z', '21']);
});

t.test('the jobs dir follows nnf-envd\'s RUNTIME_DIR (config file, NNF_ENV_RUNTIME_DIR)', async (t) => {
  // Issue 11: the plugin read only NNF_ENV_JOBS_DIR / NNF_ENV_PLUGIN_CONFIG, so a site that set
  // RUNTIME_DIR in nnf-env.conf got its variables written where the plugin never looked.
  const id = 4242n;
  const vars = { DW_JOB_where: 'runtime-dir' };
  const content = renderEnvFile(vars, header(id), statusFacts(status()));
  const h = await LuaPluginHarness.create();
  await h.writeFile(envPath(id, '/srv/nnf-env/jobs'), content);
  await h.writeFile(envPath(id, '/var/lib/other/jobs'), renderEnvFile({ DW_JOB_where: 'env-config' }, header(id), statusFacts(status())));
  await h.writeFile(envPath(id, '/tmp/rd/jobs'), renderEnvFile({ DW_JOB_where: 'env-runtime-dir' }, header(id), statusFacts(status())));
  const jobEnv = { FLUX_JOB_ID: formatJobId(id, 'f58') };
  const where = (r: Awaited<ReturnType<typeof h.run>>) => r.setenv.find((s) => s.name === 'DW_JOB_where')?.value.toString('utf8');

  const none = await h.run({ env: jobEnv });
  t.equal(where(none), undefined, 'no config file: /run/nnf-env/jobs, where there is nothing');
  t.same(none.errors, []);

  await h.writeFile('/etc/nnf-env/nnf-env.conf', '# site config\nLOG_LEVEL=info\n#RUNTIME_DIR=/run/nnf-env\nexport RUNTIME_DIR="/srv/nnf-env"   # moved\n');
  const fromFile = await h.run({ env: jobEnv });
  t.equal(where(fromFile), 'runtime-dir', 'RUNTIME_DIR from /etc/nnf-env/nnf-env.conf');
  t.same(fromFile.errors, []);

  await h.writeFile('/var/lib/other/nnf-env.conf', 'RUNTIME_DIR=/var/lib/other\n');
  t.equal(where(await h.run({ env: { ...jobEnv, NNF_ENV_CONFIG: '/var/lib/other/nnf-env.conf' } })), 'env-config', 'NNF_ENV_CONFIG names the file, as for nnf-envd');
  t.equal(where(await h.run({ env: { ...jobEnv, NNF_ENV_RUNTIME_DIR: '/tmp/rd' } })), 'env-runtime-dir', 'NNF_ENV_RUNTIME_DIR over the file');
  t.equal(where(await h.run({ env: jobEnv, jobsDir: '/var/lib/other/jobs' })), 'env-config', 'the site\'s plugin config over both');

  await h.writeFile('/etc/nnf-env/nnf-env.conf', "RUNTIME_DIR='relative/dir'\n");
  const bad = await h.run({ env: jobEnv });
  t.equal(where(bad), undefined);
  t.match(bad.errors.join('\n'), /ignoring \/etc\/nnf-env\/nnf-env\.conf: RUNTIME_DIR is not an absolute path/);

  t.equal(await h.eval(`
    local M = {}; NNF_ENV_PLUGIN_CONFIG = { export_internals = true }; plugin = { register = function () end }
    dofile("/etc/flux/shell/lua.d/nnf-env.lua")
    local c = NNF_ENV_PLUGIN_CONFIG.internals.config_value
    return table.concat({ tostring(c("A=1\\nRUNTIME_DIR=/a\\nRUNTIME_DIR = '/b' # x\\n", "RUNTIME_DIR")), tostring(c("X=1\\n", "RUNTIME_DIR")), select(2, c("RUNTIME_DIR='/a\\n", "RUNTIME_DIR")) }, "|")`),
    "/b|nil|RUNTIME_DIR: unterminated quote", 'the last line wins; quotes and comments');
});
