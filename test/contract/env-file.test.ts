import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dotenv from 'dotenv';
import {
  checkEnvValue,
  EnvFileError,
  isValidEnvName,
  parseEnvFile,
  parseEnvFileWithFacts,
  quoteEnvValue,
  renderEnvFile,
  shellQuote,
  statusFacts,
} from '../../src/contract/env-file.js';
import type { JobStatus } from '../../src/contract/job-status.js';
import { nastyEnvValues, REJECTED_ENV_VALUES } from '../lua/nasty-values.js';
import { seededRandom } from '../helpers/prng.js';

const SHELLS: Array<{ name: string; argv: string[] }> = [
  { name: 'sh', argv: ['sh'] },
  { name: 'dash', argv: ['dash'] },
  { name: 'bash', argv: ['bash'] },
  { name: 'bash --posix', argv: ['bash', '--posix'] },
];
const LOCALES = ['C', 'C.UTF-8'];

function sh(argv: string[], script: string, args: string[], cwd: string, locale = 'C'): Buffer {
  // stdin not a socket (bash would read ~/.bashrc, thinking rshd started it), HOME the test dir.
  const r = spawnSync(argv[0]!, [...argv.slice(1), '-c', script, 'nnf-env-test', ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: locale, HOME: cwd },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

function splitNul(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(0); i >= 0; i = buf.indexOf(0, start)) {
    out.push(buf.subarray(start, i));
    start = i + 1;
  }
  if (start !== buf.length) throw new Error('shell output does not end with NUL');
  return out;
}

/** A test label for any value: ASCII only (TAP is line-based; U+2028 and friends break it). */
function label(v: string, max = 40): string {
  return JSON.stringify(v.slice(0, max)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const names = (n: number, prefix = 'NNF_T_'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);

t.test('quoting rules', async (t) => {
  t.equal(quoteEnvValue('abc'), "'abc'");
  t.equal(quoteEnvValue(''), "''");
  t.equal(quoteEnvValue("it's"), `"it's"`);
  t.equal(quoteEnvValue('$(x) `y` "z" \\w'), `'$(x) \`y\` "z" \\w'`);
  t.equal(quoteEnvValue("it's $x"), null);
  t.equal(quoteEnvValue('x\\'), null, 'trailing backslash');
  t.equal(quoteEnvValue('x\n'), null);
  t.ok(isValidEnvName('DW_JOB_my_gfs2'));
  t.ok(isValidEnvName('_'));
  for (const bad of ['', '1A', 'A-B', 'A B', 'A=B', 'É', 'A\n']) t.notOk(isValidEnvName(bad), JSON.stringify(bad));
});

t.test('nasty values are accepted, bad ones rejected with the right reason', async (t) => {
  for (const v of nastyEnvValues('/tmp/canary')) t.equal(checkEnvValue(v), null, `accepts ${label(v)}`);
  for (const [v, reason] of REJECTED_ENV_VALUES) {
    t.equal(checkEnvValue(v), reason, `rejects ${label(v)}`);
    t.equal(quoteEnvValue(v), null);
    t.throws(() => renderEnvFile({ X: v }, ''), { code: 'ENV_VALUE_REJECTED' });
  }
});

t.test('nasty values survive our parser, dotenv, sh/dash/bash, and nothing executes', async (t) => {
  const dir = t.testdir();
  const canary = join(dir, 'canary');
  const values = nastyEnvValues(canary);
  const vars: Record<string, string> = {};
  const ns = names(values.length);
  ns.forEach((n, i) => (vars[n] = values[i]!));
  const text = renderEnvFile(vars, `job fTEST\n# nnf-env:warning=fake $(touch ${canary})`, {
    phase: 'delivered',
    warning: [`port 4001 $(touch ${canary}) unreachable`],
  });
  const file = join(dir, 'fTEST.env');
  writeFileSync(file, text);

  t.same(parseEnvFile(text, file), vars, 'parseEnvFile (string)');
  t.same(parseEnvFile(Buffer.from(text), file), vars, 'parseEnvFile (bytes)');
  t.same(dotenv.parse(Buffer.from(text)), vars, 'dotenv.parse');

  const expected = ns.map((n) => Buffer.from(vars[n]!, 'utf8'));
  for (const shell of SHELLS) {
    for (const locale of LOCALES) {
      // Sourced with set -a: every variable exported, read back from the environment.
      const out = sh(shell.argv, 'set -a; . "$1"; set +a; env -0', [file], dir, locale);
      const got = new Map<string, Buffer>();
      for (const entry of splitNul(out)) {
        const eq = entry.indexOf(0x3d);
        const name = entry.subarray(0, eq).toString('latin1');
        if (name.startsWith('NNF_T_')) got.set(name, entry.subarray(eq + 1));
      }
      t.equal(got.size, ns.length, `${shell.name} ${locale}: every variable exported`);
      let same = 0;
      ns.forEach((n, i) => {
        if (got.get(n)?.equals(expected[i]!)) same++;
        else t.fail(`${shell.name} ${locale}: ${n} differs: ${label(values[i]!, 60)}`);
      });
      t.equal(same, ns.length, `${shell.name} ${locale}: all ${same} values byte-for-byte`);
    }
  }
  t.notOk(existsSync(canary), 'no canary: nothing executed');
  t.same(readdirSync(dir).sort(), ['fTEST.env'], 'no file created by a redirection');
});

// Values drawn from the characters that matter to the readers, for agreement beyond the list.
function randomFormatValue(rand: () => number): string {
  const pool = ["'", '"', '$', '`', '\\', '#', '=', ' ', ';', '&', '|', '(', ')', '{', '}', '!', '*', 'a', 'Z', '0',
    '\u00a0', '\u2028', '\u00e9', '\u{1F600}', '$(', '${', "'#'", '\\\'', '\\n'];
  let v = '';
  const len = Math.floor(rand() * 12);
  for (let i = 0; i < len; i++) v += pool[Math.floor(rand() * pool.length)];
  return v;
}


t.test('random values: every accepted one reads back the same everywhere', async (t) => {
  const dir = t.testdir();
  const rand = seededRandom(20260818);
  const vars: Record<string, string> = {};
  let rejected = 0;
  let i = 0;
  while (Object.keys(vars).length < 600) {
    const v = randomFormatValue(rand);
    if (checkEnvValue(v) !== null) {
      rejected++;
      t.equal(quoteEnvValue(v), null);
      continue;
    }
    vars[`NNF_R_${String(i++).padStart(4, '0')}`] = v;
  }
  t.ok(rejected > 50, `the generator also produced ${rejected} unrepresentable values`);
  const text = renderEnvFile(vars, 'random');
  const file = join(dir, 'r.env');
  writeFileSync(file, text);
  t.same(parseEnvFile(text, file), vars, 'parseEnvFile');
  t.same(dotenv.parse(text), vars, 'dotenv.parse');
  const ns = Object.keys(vars).sort();
  for (const shell of SHELLS) {
    const script = `. "$1"; printf '%s\\0' ${ns.map((n) => `"$${n}"`).join(' ')}`;
    const got = splitNul(sh(shell.argv, script, [file], dir));
    t.same(got.map((b) => b.toString('utf8')), ns.map((n) => vars[n]), `${shell.name}`);
  }
});

/** Any string without NUL: controls, quotes, shells' internal marker bytes, non-BMP, lone surrogates. */
function randomAnyString(rand: () => number): string {
  const special = ["'", '"', '\\', '$', '`', '!', '\n', '\r', '\t', '\x01', '\x7f', '\x1b', ' ', '*', '~', '#', ';',
    '\u0081', '\u0082', '\u0083', '\u0084', '\u0086', '\u0087', '\u0088', '\u0085', '\u00ff', "'\\''", '$(', '${'];
  let v = '';
  const len = Math.floor(rand() * 40);
  for (let i = 0; i < len; i++) {
    const r = rand();
    if (r < 0.5) v += special[Math.floor(rand() * special.length)];
    else if (r < 0.7) v += String.fromCharCode(1 + Math.floor(rand() * 0x7f));
    else if (r < 0.85) {
      let cp = 0x80 + Math.floor(rand() * (0xffff - 0x80));
      if (cp >= 0xd800 && cp <= 0xdfff) cp -= 0x800;
      v += String.fromCharCode(cp);
    } else if (r < 0.97) v += String.fromCodePoint(0x10000 + Math.floor(rand() * 0xfffff));
    else v += String.fromCharCode(0xd800 + Math.floor(rand() * 0x800)); // lone surrogate
  }
  return v;
}

t.test('shellQuote: eval in sh, dash and bash gives back any string without NUL', async (t) => {
  const dir = t.testdir();
  const canary = join(dir, 'canary');
  const rand = seededRandom(42);
  const values = [
    ...nastyEnvValues(canary),
    ...REJECTED_ENV_VALUES.map(([v]) => v).filter((v) => !v.includes('\0')),
    "'\\''",
    "'''",
    '\\\'',
    "\n'\n",
    '\n\n\n',
    'trailing newlines\n\n',
    '\x01\x7f\x01\x7f',
    `'$(touch ${canary})'`,
    `'\`touch ${canary}\`'`,
    `\n$(touch ${canary})\n`,
    'ends with backslash\\',
    '\\',
    ...Array.from({ length: 400 }, () => randomAnyString(rand)),
  ];
  const ns = names(values.length, 'NNF_Q_');
  // As `nnf-env export --format sh` prints them, then eval "$(...)" like a job script does.
  const exportText = ns.map((n, i) => `export ${n}=${shellQuote(values[i]!)}\n`).join('');
  const file = join(dir, 'export.sh');
  writeFileSync(file, exportText, 'utf8');
  const expected = values.map((v) => Buffer.from(v, 'utf8'));
  const script = `eval "$(cat "$1")"; printf '%s\\0' ${ns.map((n) => `"$${n}"`).join(' ')}`;
  for (const shell of SHELLS) {
    for (const locale of LOCALES) {
      const got = splitNul(sh(shell.argv, script, [file], dir, locale));
      t.equal(got.length, values.length, `${shell.name} ${locale}: count`);
      let same = 0;
      got.forEach((b, i) => {
        if (b.equals(expected[i]!)) same++;
        else t.fail(`${shell.name} ${locale}: value ${i} differs: ${label(values[i]!, 80)} -> ${label(b.toString('utf8'), 80)}`);
      });
      t.equal(same, values.length, `${shell.name} ${locale}: all ${same} values byte-for-byte`);
    }
  }
  t.notOk(existsSync(canary), 'no canary: nothing executed');
  t.throws(() => shellQuote('a\0b'), EnvFileError);
  t.equal(shellQuote("it's"), "'it'\\''s'");
  t.equal(shellQuote(''), "''");
});

t.test('renderEnvFile', async (t) => {
  const text = renderEnvFile(
    { B: '2', A: '1', _Z: "it's", a: 'lower' },
    'nnf-env: job fX workflow default/fluxjob-1 (generated, do not edit)\nsecond\x1b[2J line\n\nnnf-env:warning=forged',
    { phase: 'failed', 'job-warning': ['workflow failed: boom\nsecond line', 'x\u0085y'], warning: 'one' },
  );
  t.equal(
    text,
    [
      '# nnf-env: job fX workflow default/fluxjob-1 (generated, do not edit)',
      '# second?[2J line',
      '#',
      '# nnf-env: warning=forged',
      '# nnf-env:phase=failed',
      '# nnf-env:job-warning=workflow failed: boom second line',
      '# nnf-env:job-warning=x?y',
      '# nnf-env:warning=one',
      "A='1'",
      "B='2'",
      `_Z="it's"`,
      "a='lower'",
      '',
    ].join('\n'),
  );
  const { vars, facts } = parseEnvFileWithFacts(text, 'x');
  t.same(vars, { A: '1', B: '2', _Z: "it's", a: 'lower' });
  t.same(facts, [
    { key: 'phase', value: 'failed' },
    { key: 'job-warning', value: 'workflow failed: boom second line' },
    { key: 'job-warning', value: 'x?y' },
    { key: 'warning', value: 'one' },
  ], 'header lines never pass for facts');
  t.equal(renderEnvFile({}, ''), '', 'empty');
  t.equal(renderEnvFile({ A: 'x' }, ''), "A='x'\n");
  const long = renderEnvFile({}, '', { warning: 'w'.repeat(5000) });
  t.equal(long.length, '# nnf-env:warning='.length + 2000 + 1, 'long fact cut to 2000 characters');
  t.match(long, /\u2026\n$/);
  t.equal(renderEnvFile({}, '', { warning: 'x\ud800' }), '# nnf-env:warning=x\ufffd\n', 'lone surrogate replaced');
  t.throws(() => renderEnvFile({}, '', { Bad: 'x' }), { code: 'ENV_VALUE_REJECTED' });
  t.throws(() => renderEnvFile({}, '', { 'a=b': 'x' }), { code: 'ENV_VALUE_REJECTED' });
  t.throws(() => renderEnvFile({ 'A-B': 'x' }, ''), { code: 'ENV_VALUE_REJECTED', message: /invalid variable name/ });
  t.throws(() => renderEnvFile({ A: 'x\n' }, ''), { code: 'ENV_VALUE_REJECTED', message: /control-character/ });
});

t.test('parseEnvFile is strict and names file and line', async (t) => {
  const bad: Array<[string | Uint8Array, number, RegExp]> = [
    ["A='x'", 1, /no newline/],
    ["A='x'\nB='y'", 2, /no newline/],
    ["A='x'\r\n", 1, /control character/],
    ['A=x\n', 1, /not quoted/],
    ["A='x\n", 1, /not quoted/],
    ["A=\"x\"\n", 1, /not quoted/],
    ["A='it's'\n", 1, /not quoted/],
    ["A=\"it's $x\"\n", 1, /not quoted/],
    ["A=\"it's \\x\"\n", 1, /not quoted/],
    ["A='x\\'\n", 1, /not quoted/],
    ["A='x' # comment\n", 1, /not quoted/],
    ["A='x' \n", 1, /not quoted/],
    ["A='\n", 1, /not quoted/],
    ["A=\n", 1, /not quoted/],
    ["# ok\n A='x'\n", 2, /not NAME=/],
    ["A ='x'\n", 1, /not NAME=/],
    ["export A='x'\n", 1, /not NAME=/],
    ["1A='x'\n", 1, /not NAME=/],
    ["A-B='x'\n", 1, /not NAME=/],
    ["garbage\n", 1, /not NAME=/],
    ["A='1'\nB='2'\nA='3'\n", 3, /A appears again \(first on line 1\)/],
    ["A='tab\there'\n", 1, /control character/],
    ["A='\u0085'\n", 1, /control character/],
    ["# \x1b[2J\n", 1, /control character/],
    [Buffer.concat([Buffer.from("A='ok'\nB='"), Buffer.from([0xff, 0xfe]), Buffer.from("'\n")]), 2, /not valid UTF-8/],
    [Buffer.from([0xc0, 0xaf, 0x0a]), 1, /not valid UTF-8/],
  ];
  for (const [text, line, reason] of bad) {
    try {
      parseEnvFile(text, '/run/nnf-env/jobs/fX.env');
      t.fail(`accepted ${label(text.toString())}`);
    } catch (err) {
      t.ok(err instanceof EnvFileError, 'EnvFileError');
      const e = err as EnvFileError;
      t.equal(e.code, 'ENV_FILE_INVALID');
      t.equal(e.line, line, `line of ${label(text.toString())}`);
      t.equal(e.source, '/run/nnf-env/jobs/fX.env');
      t.match(e.message, new RegExp(`^/run/nnf-env/jobs/fX\\.env:${line}: `));
      t.match(e.message, reason);
      t.ok(e.hint, 'has a hint');
    }
  }
  t.same(parseEnvFile('', 'x'), {}, 'empty file');
  t.same(parseEnvFile("\n# c\n\nA='1'\n\n", 'x'), { A: '1' }, 'empty and comment lines');
  const proto = parseEnvFile("__proto__='x'\nconstructor='y'\n", 'x');
  t.same(Object.keys(proto), ['__proto__', 'constructor'], 'no prototype games');
  t.equal(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, 'x');
  t.equal(Object.getPrototypeOf(proto), Object.prototype);
});

function baseStatus(over: Partial<JobStatus> = {}): JobStatus {
  return {
    version: 1,
    job: { id: 'fkEPGJX8vhd', dec: '321103304048246784', userID: 1050 },
    workflow: { namespace: 'default', name: 'fluxjob-321103304048246784', state: 'PreRun', ready: true, status: 'Completed', message: '' },
    phase: 'delivered',
    error: null,
    variables: ['DW_JOBS'],
    rejected: [],
    rabbit: { name: 'rabbit-node-1', address: '10.0.0.1' },
    ports: { target: 'rabbit-node-1', address: '10.0.0.1', results: [
      { port: 4000, reachable: true, attempts: 1, timeToFirstSuccessMs: 3, lastError: null },
    ] },
    timings: { trackedAt: '2026-01-01T00:00:00Z' },
    ...over,
  };
}

t.test('statusFacts', async (t) => {
  t.same(statusFacts(baseStatus()), { phase: 'delivered' }, 'nothing to say');
  const failed = statusFacts(baseStatus({ phase: 'failed', error: { code: 'WORKFLOW_ERROR', message: 'DataIn: mount failed' } }));
  t.same(failed, { phase: 'failed', 'job-warning': ['workflow default/fluxjob-321103304048246784 failed, its variables are not set: DataIn: mount failed'] });
  const rejected = statusFacts(baseStatus({ rejected: [{ name: 'LD_PRELOAD', reason: 'prefix-not-allowed' }, { name: 'NNF_X', reason: 'control-character' }] }));
  t.match(rejected['job-warning'], [/^2 variables of workflow default\/fluxjob-321103304048246784 not set: LD_PRELOAD \(prefix-not-allowed\), NNF_X \(control-character\)$/]);
  const many = statusFacts(baseStatus({ rejected: Array.from({ length: 13 }, (_, i) => ({ name: `V${i}`, reason: 'invalid-name' as const })) }));
  t.match(many['job-warning'], [/V9 \(invalid-name\) and 3 more$/]);
  const ports = statusFacts(baseStatus({ ports: { target: 'rabbit-node-1', address: '10.0.0.1', results: [
    { port: 4000, reachable: true, attempts: 1, timeToFirstSuccessMs: 3, lastError: null },
    { port: 4001, reachable: false, attempts: 30, timeToFirstSuccessMs: null, lastError: 'connect ECONNREFUSED 10.0.0.1:4001' },
    { port: 4002, reachable: false, attempts: 30, timeToFirstSuccessMs: null, lastError: null },
  ] } }));
  t.same(ports.warning, ['user container ports 4001 (connect ECONNREFUSED 10.0.0.1:4001), 4002 on rabbit-node-1 (10.0.0.1) not reachable from this node']);
  t.notOk(ports['job-warning']);
  t.match(statusFacts(baseStatus({ phase: 'probing' })).warning, [/still being checked/]);
  t.match(statusFacts(baseStatus({ phase: 'waiting', ports: null })).warning, [/had not finished PreRun/]);
  // What the daemon passes renders and parses back.
  const text = renderEnvFile({ A: '1' }, 'h', ports);
  t.same(parseEnvFileWithFacts(text, 'x').facts.map((f) => f.key), ['phase', 'warning']);
});
