/**
 * The job-script commands (export, get, show, endpoint, run) through the built CLI, against job
 * files written by the daemon's own code. `wait` and `check-ports`: wait-ports.test.ts.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkEnvValue } from '../../src/contract/env-file.js';
import { formatJobId } from '../../src/contract/jobid.js';
import { nnfEnvBin } from '../helpers/paths.js';
import { baseEnv, makeSandbox, runCli, runShell, writeJob, type Sandbox } from './job-files.js';

const JOB = 321103304048246784n;
const F58 = formatJobId(JOB, 'f58'); // ƒ...
const F58PLAIN = formatJobId(JOB, 'f58plain');

let sb: Sandbox;
t.before(async () => {
  sb = await makeSandbox();
});
t.teardown(async () => {
  await sb.cleanup();
});

const env = (extra: Record<string, string | undefined> = {}) => baseEnv(sb, { FLUX_JOB_ID: F58, ...extra });

/**
 * Values that must survive `eval "$(nnf-env export)"` byte for byte without running anything:
 * every one is accepted by the daemon (checked below), each tries a different shell trick.
 */
function nastyValues(canaryDir: string): Record<string, string> {
  const c = (n: string) => join(canaryDir, `canary-${n}`);
  return {
    DW_JOB_plain: '/mnt/nnf/6b1f0a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b-0',
    DW_JOB_empty: '',
    DW_JOB_spaces: '  leading and trailing  ',
    DW_JOB_subst: `$(touch ${c('subst')})`,
    DW_JOB_backtick: `\`touch ${c('backtick')}\``,
    DW_JOB_semicolon: `x; touch ${c('semicolon')}`,
    DW_JOB_and: `x && touch ${c('and')} || touch ${c('or')}`,
    DW_JOB_pipe: `x | touch ${c('pipe')}`,
    DW_JOB_var: '$HOME ${HOME} $((1+1)) $0 $$ $@',
    DW_JOB_single: "it's 'quoted'",
    DW_JOB_double: 'say "hi" $(touch ' + c('double') + ')',
    DW_JOB_backslash: 'a\\b\\\\c\\nd',
    DW_JOB_glob: '* ? [a-z] ~ ~root {a,b}',
    DW_JOB_hash: '# not a comment',
    DW_JOB_dash: '-e -n --help',
    DW_JOB_redirect: `> ${c('redirect')} < /etc/passwd 2>&1`,
    DW_JOB_history: '!! !-1 !$ ^a^b',
    DW_JOB_percent: '%s %d %n %%',
    DW_JOB_unicode: 'ünïcødé 雪 🐇 \u00a0nbsp \u2028ls \u200bzw',
    DW_JOB_quote_mix: `'; touch ${c('quote-mix')}; echo '`,
    DW_JOB_eq: 'a=b=c',
    DW_JOB_export: `x\u00a0export Y=1; touch ${c('export')}`,
    DW_JOB_ifs: '\u00a0 a  b   c',
    DW_JOB_brace: '}; touch ' + c('brace') + '; {',
    DW_JOB_dq_end: '"',
    DW_JOB_sq_only: "'",
    NNF_CONTAINER_PORTS: '4000,4001',
  };
}

t.test('every nasty value is one the daemon accepts (else the test proves nothing)', async (t) => {
  for (const [name, value] of Object.entries(nastyValues('/x'))) t.equal(checkEnvValue(value), null, name);
});

t.test('eval "$(nnf-env export)" is safe and exact in bash and dash', async (t) => {
  const canaryDir = join(sb.root, 'canaries');
  const vars = nastyValues(canaryDir);
  await writeJob(sb.jobsDir, JOB, { vars });
  const { mkdir } = await import('node:fs/promises');
  await mkdir(canaryDir, { recursive: true });
  const names = Object.keys(vars).sort();
  // Print each variable NUL-separated with printf (no interpretation of the value).
  const script =
    `out=$("$NODE" "$BIN" export) || exit 9\n` +
    `eval "$out" || exit 8\n` +
    names.map((n) => `printf '%s\\0' "$${n}"`).join('\n') + '\n' +
    // exported, not just set: visible to a child process
    `"$NODE" -e 'process.stdout.write("\\x01" + (process.env.DW_JOB_subst ?? "MISSING"))'\n`;
  for (const shell of ['/usr/bin/bash', '/usr/bin/dash']) {
    const r = await runShell(shell, script, { ...env(), NODE: process.execPath, BIN: (await import('../helpers/paths.js')).nnfEnvBin });
    t.equal(r.code, 0, `${shell} exits 0 (${r.stderr})`);
    // \x01 cannot occur in a value (no control characters), so it separates safely.
    const [printed, childSeen] = r.stdout.split('\x01');
    const got = (printed ?? '').split('\0').slice(0, -1);
    t.equal(got.length, names.length, `${shell}: one value per variable`);
    names.forEach((n, i) => t.equal(got[i], vars[n], `${shell}: ${n} exact`));
    t.equal(childSeen, vars.DW_JOB_subst, `${shell}: variables are exported`);
    t.same(await readdir(canaryDir), [], `${shell}: nothing was executed`);
  }
});

t.test('export --format json and dotenv', async (t) => {
  const vars = { DW_JOB_a: "it's", DW_JOB_b: '$x "y"', NNF_ENV_LOCAL_RABBIT: 'rabbit-node-1' };
  await writeJob(sb.jobsDir, JOB, { vars });
  const json = await runCli(['export', '--format', 'json'], { env: env() });
  t.equal(json.code, 0, json.stderr);
  t.same(JSON.parse(json.stdout), vars);
  const dotenv = await runCli(['export', '--format', 'dotenv'], { env: env() });
  t.equal(dotenv.code, 0);
  t.equal(dotenv.stdout, `DW_JOB_a="it's"\nDW_JOB_b='$x "y"'\nNNF_ENV_LOCAL_RABBIT='rabbit-node-1'\n`);
  // and the dotenv package reads it back to the same values
  const dotenvPkg = (await import('dotenv')).default;
  t.same(dotenvPkg.parse(dotenv.stdout), vars);
  const bad = await runCli(['export', '--format', 'yaml'], { env: env() });
  t.not(bad.code, 0);
  t.match(bad.stderr, /yaml/);
});

t.test('get', async (t) => {
  await writeJob(sb.jobsDir, JOB, { vars: { DW_JOB_x: '/mnt/nnf/x y', DW_JOB_empty: '' } });
  const r = await runCli(['get', 'DW_JOB_x'], { env: env() });
  t.equal(r.code, 0);
  t.equal(r.stdout, '/mnt/nnf/x y\n');
  const empty = await runCli(['get', 'DW_JOB_empty'], { env: env() });
  t.equal(empty.code, 0, 'set but empty is set');
  t.equal(empty.stdout, '\n');
  const unset = await runCli(['get', 'DW_JOB_nope'], { env: env() });
  t.equal(unset.code, 1);
  t.equal(unset.stdout, '');
  t.match(unset.stderr, `DW_JOB_nope is not set for job ${F58PLAIN}`);
});

t.test('the job id: --job, else NNF_ENV_JOB_ID, else FLUX_JOB_ID, in any encoding', async (t) => {
  const other = 1234n;
  await writeJob(sb.jobsDir, JOB, { vars: { DW_JOB_which: 'main' } });
  await writeJob(sb.jobsDir, other, { vars: { DW_JOB_which: 'other' } });
  const get = (extra: Record<string, string | undefined>, args: string[] = []) =>
    runCli(['get', 'DW_JOB_which', ...args], { env: baseEnv(sb, extra) }).then((r) => r.stdout.trim() || r.stderr);
  t.equal(await get({ FLUX_JOB_ID: F58 }), 'main', 'ƒ form');
  t.equal(await get({ FLUX_JOB_ID: F58PLAIN }), 'main', 'f form');
  t.equal(await get({ FLUX_JOB_ID: JOB.toString() }), 'main', 'decimal');
  t.equal(await get({ FLUX_JOB_ID: ` 0x${JOB.toString(16)} ` }), 'main', 'hex with blanks');
  t.equal(await get({ FLUX_JOB_ID: F58 }, ['--job', 'fNH']), 'other', '--job wins');
  t.equal(await get({ NNF_ENV_JOB_ID: '1234' }), 'other', 'NNF_ENV_JOB_ID');
  t.equal(await get({ FLUX_JOB_ID: F58, NNF_ENV_JOB_ID: '1234' }), 'other', 'NNF_ENV_JOB_ID (the job whose variables these are) before FLUX_JOB_ID');
  t.equal(await get({ NNF_ENV_JOB_ID: '1234' }, ['--job', F58]), 'main', '--job wins over NNF_ENV_JOB_ID too');

  const none = await runCli(['export'], { env: baseEnv(sb) });
  t.equal(none.code, 2);
  t.match(none.stderr, /no job id: not inside a Flux job/);
  t.match(none.stderr, /--job/);
  const bad = await runCli(['export'], { env: baseEnv(sb, { FLUX_JOB_ID: 'not-a-job' }) });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /FLUX_JOB_ID="not-a-job" is not a Flux job id/);
});

t.test('a batch script, a flux run step in it, a nested flux alloc: the allocation\'s job', async (t) => {
  // What the job shell's plugin leaves in a batch job's environment: the variables and
  // NNF_ENV_JOB_ID, FLUX_JOB_ID of the batch job itself. Inside the batch instance, a step's
  // shell sets FLUX_JOB_ID to the step's own id (flux-core src/shell/shell.c,
  // shell_setup_environment; flux-environment(7)), which has no files on this node.
  await writeJob(sb.jobsDir, JOB, { vars: { DW_JOB_which: 'batch' } });
  const bin = join(sb.root, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'nnf-env'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(nnfEnvBin)} "$@"\n`, { mode: 0o755 });
  // Stand-in for `flux run CMD` / `flux alloc CMD` inside an instance: the command runs with the
  // submitter's environment (flux-run(1): the environment is copied) and the new job's
  // FLUX_JOB_ID (F58, as the shell prints ids), FLUX_URI of the (sub-)instance, FLUX_JOB_SIZE.
  const count = join(sb.root, 'flux-jobs');
  await writeFile(join(bin, 'flux'), [
    '#!/bin/sh',
    'case "$1" in run|alloc) verb=$1; shift ;; *) echo "stand-in flux: $1 not supported" >&2; exit 64 ;; esac',
    'n=$(( $(cat ' + count + ' 2>/dev/null || echo 0) + 1 )); echo $n > ' + count,
    'ids="ƒ2 ƒ3 ƒ4 ƒ5 ƒ6 ƒ7 ƒ8"; FLUX_JOB_ID=$(echo $ids | cut -d" " -f$n)',
    'export FLUX_JOB_ID FLUX_JOB_SIZE=1 FLUX_JOB_NNODES=1',
    '[ "$verb" = alloc ] && export FLUX_URI="local://' + sb.root + '/alloc-$n"',
    'exec "$@"',
    '',
  ].join('\n'), { mode: 0o755 });
  const jobEnv = baseEnv(sb, {
    PATH: `${bin}:/usr/bin:/bin`,
    FLUX_JOB_ID: F58,
    FLUX_URI: `local://${sb.root}/batch`,
    NNF_ENV_JOB_ID: F58PLAIN,
    DW_JOB_which: 'batch',
  });
  const script = [
    'set -e',
    'echo "script: $(nnf-env get DW_JOB_which)"',
    'flux run sh -c \'echo "step $FLUX_JOB_ID: $(nnf-env get DW_JOB_which)"\'',
    'flux run sh -c \'eval "$(nnf-env export)"; echo "export: $DW_JOB_which"\'',
    'flux alloc sh -c \'flux run sh -c "echo nested \\$FLUX_JOB_ID: \\$(nnf-env get DW_JOB_which)"\'',
    'flux run sh -c \'nnf-env get DW_JOB_which --job ƒ2 || echo "--job ƒ2: exit $?"\'',
  ].join('\n');
  const r = await runShell('/bin/sh', script, jobEnv);
  t.equal(r.stderr.replace(/^.*no nnf-env variables for job f2 .*\n?/m, ''), '', 'nothing else on stderr');
  t.equal(r.stdout, [
    'script: batch',
    'step ƒ2: batch',
    'export: batch',
    'nested ƒ5: batch',
    '--job ƒ2: exit 5',
    '',
  ].join('\n'));
  t.match(r.stderr, /no nnf-env variables for job f2 on this node/, '--job still names another job');
  t.equal(r.code, 0);
});

t.test('errors say what happened', async (t) => {
  const id = (n: bigint) => ({ FLUX_JOB_ID: formatJobId(n, 'f58') });
  // no files at all
  const missing = await runCli(['export'], { env: baseEnv(sb, id(999n)) });
  t.equal(missing.code, 5);
  t.match(missing.stderr, /no nnf-env variables for job f[1-9A-Za-z]+ on this node/);
  t.match(missing.stderr, /#DW/);

  // no workflow
  await writeJob(sb.jobsDir, 1000n, { status: { phase: 'no-workflow', workflow: null }, envFile: false });
  const nowf = await runCli(['get', 'X'], { env: baseEnv(sb, id(1000n)) });
  t.equal(nowf.code, 5);
  t.match(nowf.stderr, /has no workflow/);

  // not delivered yet
  await writeJob(sb.jobsDir, 1001n, { status: { phase: 'waiting', workflow: { namespace: 'default', name: 'fluxjob-1001', state: 'DataIn', ready: false } } });
  const waiting = await runCli(['export'], { env: baseEnv(sb, id(1001n)) });
  t.equal(waiting.code, 3);
  t.match(waiting.stderr, /not delivered yet \(phase waiting, workflow default\/fluxjob-1001 in DataIn\)/);
  t.match(waiting.stderr, /nnf-env wait/);

  // env file written, status not yet (the daemon writes env first)
  await writeJob(sb.jobsDir, 1002n, { vars: { DW_JOB_a: 'x' }, statusFile: false });
  const half = await runCli(['export'], { env: baseEnv(sb, id(1002n)) });
  t.equal(half.code, 3);
  t.match(half.stderr, /not delivered yet/);

  // workflow failed, with its message
  await writeJob(sb.jobsDir, 1003n, {
    status: { phase: 'failed', error: { code: 'WORKFLOW_ERROR', message: 'could not allocate 10GiB on rabbit-node-1' } },
  });
  const failed = await runCli(['export'], { env: baseEnv(sb, id(1003n)) });
  t.equal(failed.code, 4);
  t.match(failed.stderr, /workflow default\/fluxjob-1003 of job f\w+ failed: could not allocate 10GiB on rabbit-node-1/);

  // a corrupt file is reported, not a crash
  const { writeFile } = await import('node:fs/promises');
  const paths = await writeJob(sb.jobsDir, 1004n, { vars: { DW_JOB_a: 'x' } });
  await writeFile(paths.env, "DW_JOB_a='unterminated\n");
  const corrupt = await runCli(['export'], { env: baseEnv(sb, id(1004n)) });
  t.equal(corrupt.code, 1);
  t.match(corrupt.stderr, /cannot read .*\.env/);
  t.notMatch(corrupt.stderr, /internal error/);
});

t.test('permission denied on another user\'s job', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async (t) => {
  // Files owned by uid 1050 (the job's user), read by nobody.
  await writeJob(sb.jobsDir, 2000n, { vars: { DW_JOB_a: 'secret' }, uid: 1050, gid: 1050 });
  const r = await runCli(['export'], { env: baseEnv(sb, { FLUX_JOB_ID: formatJobId(2000n, 'f58') }), uid: 65534, gid: 65534 });
  t.equal(r.code, 6, r.stderr);
  t.match(r.stderr, /permission denied reading .*: job f\w+ belongs to another user/);
  t.notMatch(r.stdout, /secret/);
  // the owner can
  const own = await runCli(['get', 'DW_JOB_a'], { env: baseEnv(sb, { FLUX_JOB_ID: formatJobId(2000n, 'f58') }), uid: 1050, gid: 1050 });
  t.equal(own.code, 0, own.stderr);
  t.equal(own.stdout, 'secret\n');
});

t.test('show: table and --json', async (t) => {
  await writeJob(sb.jobsDir, JOB, {
    vars: { DW_JOB_a: '/mnt/nnf/a', NNF_CONTAINER_PORTS: '4000,4001' },
    status: {
      rejected: [{ name: 'LD_PRELOAD', reason: 'prefix-not-allowed' }],
      ports: {
        target: 'rabbit-node-1',
        address: '10.0.0.1',
        results: [
          { port: 4000, reachable: true, attempts: 2, timeToFirstSuccessMs: 105, lastError: null },
          { port: 4001, reachable: false, attempts: 9, timeToFirstSuccessMs: null, lastError: 'ECONNREFUSED' },
        ],
      },
    },
  });
  const r = await runCli(['show'], { env: env() });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^phase\s+delivered$/m);
  t.match(r.stdout, /^workflow\s+default\/fluxjob-321103304048246784 \(PreRun, ready, Completed\)$/m);
  t.match(r.stdout, /^DW_JOB_a\s+\/mnt\/nnf\/a$/m);
  t.match(r.stdout, /^ports on rabbit-node-1 \(10\.0\.0\.1\)$/m);
  t.match(r.stdout, /^4000\s+yes\s+2\s+105 ms\s+-$/m);
  t.match(r.stdout, /^4001\s+NO\s+9\s+-\s+ECONNREFUSED$/m);
  t.match(r.stdout, /^LD_PRELOAD\s+prefix-not-allowed$/m);
  const j = await runCli(['show', '--json'], { env: env() });
  const parsed = JSON.parse(j.stdout);
  t.equal(parsed.status.phase, 'delivered');
  t.same(parsed.variables, { DW_JOB_a: '/mnt/nnf/a', NNF_CONTAINER_PORTS: '4000,4001' });

  // show works before delivery too: it says where the job is
  await writeJob(sb.jobsDir, 3000n, { status: { phase: 'waiting' }, envFile: false });
  const w = await runCli(['show'], { env: baseEnv(sb, { FLUX_JOB_ID: '3000' }) });
  t.equal(w.code, 0);
  t.match(w.stdout, /^phase\s+waiting$/m);
});

t.test('endpoint', async (t) => {
  const base = {
    NNF_CONTAINER_PORTS: '4000,4001',
    NNF_CONTAINER_PORTS_red_rock_slushy: '4000',
    NNF_CONTAINER_PORTS_blue: '4001',
    NNF_ENV_LOCAL_RABBIT: 'rabbit-node-1',
    NNF_ENV_LOCAL_RABBIT_ADDRESS: 'fd00::1',
    NNF_ENV_CONTAINER_TARGET: 'rabbit-node-1',
  };
  await writeJob(sb.jobsDir, JOB, { vars: base });
  const ep = async (...args: string[]) => {
    const r = await runCli(['endpoint', ...args], { env: env() });
    return r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr}`;
  };
  t.equal(await ep(), 'rabbit-node-1:4000\n', 'non-MPI: the rabbit\'s own name (what its TLS certificate names), first port');
  t.equal(await ep('--all'), 'rabbit-node-1:4000\nrabbit-node-1:4001\n');
  t.equal(await ep('--hostname'), 'rabbit-node-1:4000\n', '--hostname is the default');
  t.equal(await ep('--alias'), 'local-rabbit:4000\n', 'the alias only on request');
  t.match(await ep('--alias', '--hostname'), /^exit 1: .*exclude each other/);
  t.equal(await ep('--address', '--all'), '[fd00::1]:4000\n[fd00::1]:4001\n', 'IPv6 in brackets');
  t.equal(await ep('--container', 'red-rock-slushy'), 'rabbit-node-1:4000\n', '- in the name is _ in the variable');
  t.equal(await ep('--container', 'blue', '--alias'), 'local-rabbit:4001\n');
  const green = await ep('--container', 'green');
  t.match(green, /^exit 1: .*no container "green"/);
  t.match(green, /containers of this job: .*red_rock_slushy/);
  const alias = await runCli(['endpoint', '--alias'], { env: env({ NNF_ENV_HOSTS_ALIASES: 'my-rabbit,local-rabbit' }) });
  t.equal(alias.stdout, 'my-rabbit:4000\n', 'the first configured alias');

  // MPI: only the launcher listens
  await writeJob(sb.jobsDir, 4000n, { vars: { ...base, NNF_CONTAINER_LAUNCHER: 'rabbit-node-2', NNF_ENV_CONTAINER_TARGET: 'rabbit-node-2' } });
  const mpi = await runCli(['endpoint', '--all'], { env: baseEnv(sb, { FLUX_JOB_ID: '4000' }) });
  t.equal(mpi.stdout, 'rabbit-node-2:4000\nrabbit-node-2:4001\n');

  // no container
  await writeJob(sb.jobsDir, 4001n, { vars: { DW_JOB_a: 'x' } });
  const none = await runCli(['endpoint'], { env: baseEnv(sb, { FLUX_JOB_ID: '4001' }) });
  t.equal(none.code, 1);
  t.match(none.stderr, /has no container ports/);
});

t.test('run: variables set, exit code and signal passed on', async (t) => {
  await writeJob(sb.jobsDir, JOB, { vars: { DW_JOB_a: "/mnt/nnf/it's here", NNF_CONTAINER_PORTS: '4000' } });
  const ok = await runCli(['run', '--', 'sh', '-c', 'printf "%s|%s" "$DW_JOB_a" "$HOME"; exit 7'], { env: env() });
  t.equal(ok.code, 7, 'exit code passed on');
  t.equal(ok.stdout, `/mnt/nnf/it's here|${sb.root}`, 'job variables added, the rest of the environment kept');

  const killed = await runCli(['run', '--', 'sh', '-c', 'kill -USR1 $$'], { env: env() });
  t.equal(killed.signal, 'SIGUSR1', 'dies of the signal that killed the command');

  // a signal sent to nnf-env reaches the command
  const marker = join(sb.root, 'got-term');
  let pid = 0;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => (markReady = r));
  const running = runCli(['run', '--', 'sh', '-c', `trap 'touch ${marker}; exit 3' TERM; echo ready; while :; do sleep 0.05; done`], {
    env: env(),
    onSpawn: (p) => (pid = p),
    onStdout: (d) => d.includes('ready') && markReady(),
  });
  // The trap is set once the child has printed: signal then, not after a guessed delay.
  await Promise.race([ready, running]);
  process.kill(pid, 'SIGTERM');
  const fwd = await running;
  t.equal(fwd.code, 3, 'the command handled the forwarded SIGTERM');
  t.ok(existsSync(marker));

  // Without `--`: options after the command name are the command's.
  await writeJob(sb.jobsDir, JOB, { vars: { DW_JOBS: '/mnt/nnf/jobs dir', DW_JOB_a: 'x' } });
  const bare = await runCli(['run', 'sh', '-c', 'echo $DW_JOBS'], { env: env() });
  t.equal(bare.code, 0, bare.stderr);
  t.equal(bare.stdout, '/mnt/nnf/jobs dir\n', 'nnf-env run sh -c \'echo $DW_JOBS\' prints the value');
  const withJob = await runCli(['run', '--job', F58, 'sh', '-c', 'printf "%s|%s|%s" "$0" "$1" "$DW_JOB_a"', '--job', '--help'], { env: baseEnv(sb) });
  t.equal(withJob.stdout, '--job|--help|x', '--job before the command is nnf-env\'s; --job and --help after it are the command\'s');
  const help = await runCli(['run', '--help'], { env: env() });
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: nnf-env run \[options\] <command\.\.\.>/);

  const missing = await runCli(['run', '--', 'no-such-command-xyz'], { env: env() });
  t.equal(missing.code, 127);
  t.match(missing.stderr, /no-such-command-xyz: command not found/);

  await writeJob(sb.jobsDir, 5000n, { status: { phase: 'failed', error: { code: 'X', message: 'boom' } } });
  const failed = await runCli(['run', '--', 'true'], { env: baseEnv(sb, { FLUX_JOB_ID: '5000' }) });
  t.equal(failed.code, 4, 'does not run the command without the variables');
});

t.test('what the fast path does not take, commander answers as usual', async (t) => {
  await writeJob(sb.jobsDir, JOB, { vars: { DW_JOB_a: 'x' } });
  const help = await runCli(['export', '--help'], { env: env() });
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: nnf-env export \[options\]/);
  t.match(help.stdout, /--format <format>/);
  const noName = await runCli(['get'], { env: env() });
  t.not(noName.code, 0);
  t.match(noName.stderr, /missing required argument 'name'/);
  const unknown = await runCli(['export', '--bogus'], { env: env() });
  t.not(unknown.code, 0);
  t.match(unknown.stderr, /unknown option '--bogus'/);
  const eq = await runCli(['export', '--format=dotenv'], { env: env() });
  t.equal(eq.stdout, "DW_JOB_a='x'\n");
  const twice = await runCli(['get', 'DW_JOB_a', '--job', F58, '--job', F58], { env: env() });
  t.equal(twice.stdout, 'x\n', 'a repeated flag: commander, same answer');
});
