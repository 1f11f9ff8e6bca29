import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { COMMANDS } from '../../src/bin/command-table.js';
import { buildRoot, nnfEnvBin, repoRoot } from '../helpers/paths.js';

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('the built nnf-env: help, version, unknown commands', async (t) => {
  const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const help = run(nnfEnvBin, ['--help']);
  t.equal(help.status, 0);
  t.equal(help.stderr, '');
  for (const c of COMMANDS) t.match(help.stdout, new RegExp(`^  ${c.name}\\s+\\S`, 'm'), `lists ${c.name}`);
  t.match(help.stdout, /^Usage: nnf-env <command> \[options\]$/m);
  t.equal(run(nnfEnvBin, []).stdout, help.stdout, 'no arguments: the same help');
  t.equal(run(nnfEnvBin, ['help']).stdout, help.stdout);
  t.same(run(nnfEnvBin, ['--version']), { status: 0, stdout: version + '\n', stderr: '' });

  const unknown = run(nnfEnvBin, ['shwo']);
  t.equal(unknown.status, 2);
  t.equal(unknown.stdout, '');
  t.equal(unknown.stderr, 'nnf-env: unknown command shwo (did you mean show?) (run nnf-env --help for the list of commands)\n');
  const far = run(nnfEnvBin, ['frobnicate']);
  t.equal(far.stderr, 'nnf-env: unknown command frobnicate (run nnf-env --help for the list of commands)\n');
  const option = run(nnfEnvBin, ['--frob']);
  t.equal(option.status, 2);
  t.equal(option.stderr, 'nnf-env: unknown option --frob (run nnf-env --help for the list of commands)\n');
});

t.test('the built nnf-env: a command\'s help names it as nnf-env <command>', async (t) => {
  const r = run(nnfEnvBin, ['help', 'install']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^Usage: nnf-env install \[options\]/m);
  t.match(r.stdout, /--destdir <dir>/);
  const u = run(nnfEnvBin, ['uninstall', '--help']);
  t.match(u.stdout, /^Usage: nnf-env uninstall \[options\]/m);
});

/**
 * A copy of the built tree (inside the build directory, so that node_modules resolves) whose
 * commands/ holds stand-ins that succeed, fail in each way, or are missing, and no daemon.
 */
async function standInTree(): Promise<string> {
  const root = await mkdtemp(join(buildRoot, '.entry-test-'));
  await cp(join(buildRoot, 'src'), join(root, 'src'), { recursive: true, filter: (src) => !src.endsWith('.map') });
  const commands = join(root, 'src', 'cli', 'commands');
  await rm(commands, { recursive: true, force: true });
  await rm(join(root, 'src', 'daemon', 'main.js'), { force: true });
  await mkdir(commands, { recursive: true });
  const files: Record<string, string> = {
    '../../bin/demo.js': `import { Command } from 'commander';
export function command() {
  return new Command('whatever').argument('<word>').option('--loud', 'shout')
    .action((word, o) => { process.stdout.write('demo ' + word + (o.loud ? '!' : '') + '\\n'); });
}`,
    '../../sim/command.js': `import { Command } from 'commander';
import { NnfEnvError } from '../core/errors.js';
class SimBroke extends NnfEnvError { exitCode = 5; }
export function command() {
  return new Command('sim').action(async () => { throw new SimBroke('SIM_BROKE', 'the simulator broke', { hint: 'look at it' }); });
}`,
    'get.js': `import { Command } from 'commander';
import { NnfEnvError } from '../../core/errors.js';
export function command() {
  return new Command('get').action(() => { throw new NnfEnvError('PLAIN', 'no exit code given'); });
}`,
    'status.js': `import { Command } from 'commander';
export function command() {
  return new Command('status').action(() => { null.boom(); });
}`,
    'hosts.js': 'export const somethingElse = 1;\n',
    'epilog.js': `import './not-there.js';
export function command() { throw new Error('unreachable'); }`,
    'export.js': 'throw new Error("export.js was imported");\n',
  };
  // Keys are relative to commands/: demo and sim live in bin/ and sim/.
  for (const [name, text] of Object.entries(files)) await writeFile(join(commands, name), text);
  return root;
}

t.test('the entry with stand-in commands: dispatch, errors and exit codes', async (t) => {
  const root = await standInTree();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const bin = join(root, 'src', 'bin', 'nnf-env.js');

  const help = run(bin, ['--help']);
  t.equal(help.status, 0, '--help imports no command module (export.js would throw)');
  t.equal(help.stderr, '');

  t.same(run(bin, ['demo', 'word', '--loud']), { status: 0, stdout: 'demo word!\n', stderr: '' }, 'runs the command with its arguments');
  t.match(run(bin, ['demo', '--help']).stdout, /^Usage: nnf-env demo \[options\] <word>$/m, 'named by the table');

  t.same(run(bin, ['sim']), { status: 5, stdout: '', stderr: 'nnf-env sim: the simulator broke (look at it)\n' }, 'NnfEnvError: one line, its exit code');
  t.same(run(bin, ['get']), { status: 1, stdout: '', stderr: 'nnf-env get: no exit code given\n' }, 'NnfEnvError without exitCode: 1');

  const bug = run(bin, ['status']);
  t.equal(bug.status, 70, 'anything else: 70');
  t.match(bug.stderr, /^nnf-env status: internal error: Cannot read properties of null/);

  const missing = run(bin, ['doctor']);
  t.equal(missing.status, 1);
  t.equal(missing.stderr, `nnf-env doctor: command doctor is not available in this build (${join(root, 'src', 'cli', 'commands', 'doctor.js')} is missing) (run \`nnf-env --help\` for the commands; rebuild or reinstall nnf-env if it should be there)\n`);

  const noFactory = run(bin, ['hosts']);
  t.equal(noFactory.status, 1);
  t.equal(noFactory.stderr, 'nnf-env hosts: command hosts is not available in this build (its module exports no command())\n');

  const broken = run(bin, ['epilog']);
  t.equal(broken.status, 70, 'a missing import inside a command is a broken build, not a missing command');
  t.match(broken.stderr, /^nnf-env epilog: internal error: Cannot find module .*not-there\.js/);
  t.notMatch(broken.stderr, /not available in this build/);

  const uninstall = run(bin, ['uninstall']);
  t.match(uninstall.stderr, /^nnf-env uninstall: command uninstall is not available in this build/, 'uninstall lives in install.js');
});

t.test('nnf-envd without the daemon module: --print-config works, running says so', async (t) => {
  const root = await standInTree();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const bin = join(root, 'src', 'bin', 'nnf-envd.js');
  const printed = run(bin, ['--print-config', '--node-name', 'x1']);
  t.equal(printed.status, 0, printed.stderr);
  t.match(printed.stdout, /^NODE_NAME\s+x1\s+--node-name$/m);
  const daemon = join(root, 'src', 'daemon', 'main.js');
  for (const args of [['--log-level', 'silent'], ['--remove-hosts-entry', '--log-level', 'silent']]) {
    const r = run(bin, args);
    t.equal(r.status, 1, args.join(' '));
    t.equal(r.stderr, `nnf-envd: the daemon is not available in this build (${daemon} is missing) (rebuild or reinstall nnf-env; --print-config works without it)\n`);
  }
  const v = run(bin, ['--version']);
  t.match(v.stdout, /^\d+\.\d+\.\d+/);
  const h = run(bin, ['--help']);
  t.match(h.stdout, /--probe-deadline <value>/, 'config keys are flags');
  t.match(h.stdout, /--kube-insecure-skip-tls-verify \[bool\]/);
  const bad = run(bin, ['--no-such-flag']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /unknown option '--no-such-flag'/);
});
