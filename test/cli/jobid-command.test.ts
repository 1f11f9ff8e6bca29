// `nnf-env jobid`, run as its own process (exit codes and output are the contract). The CLI
// entry is another module; this drives the command the same way it does: command() + parse.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildRoot } from '../helpers/paths.js';

const commandModule = pathToFileURL(join(buildRoot, 'src', 'cli', 'commands', 'jobid.js')).href;
const driver = `const { command } = await import(${JSON.stringify(commandModule)});
await command().parseAsync(process.argv.slice(1), { from: 'user' });`;

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', driver, '--', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('default prints f58', async (t) => {
  const r = run('321103304048246784');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'ƒkEPGJX8vhd\n');
});

t.test('--to each encoding', async (t) => {
  const r = run('--to', 'f58plain', 'ƒkEPGJX8vhd');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'fkEPGJX8vhd\n');
  t.equal(run('--to', 'dec', 'fkEPGJX8vhd').stdout, '321103304048246784\n');
  t.equal(run('--to', 'kvs', '65535').stdout, 'job.0000.0000.0000.ffff\n');
  t.equal(run('--to', 'words', '0').status, 1, 'words is not an encoding nnf-env writes');
});

t.test('--all prints name: value lines', async (t) => {
  const r = run('--all', '6787342413402046');
  t.equal(r.status, 0, r.stderr);
  t.equal(
    r.stdout,
    [
      'dec: 6787342413402046',
      'f58: ƒuzzybunny',
      'f58plain: fuzzybunny',
      'hex: 0x181d0d4d850fbe',
      'dothex: 0018.1d0d.4d85.0fbe',
      'kvs: job.0018.1d0d.4d85.0fbe',
    ].join('\n') + '\n',
  );
});

t.test('bad id exits 2 with the JobIdError message', async (t) => {
  const r = run('../etc/passwd');
  t.equal(r.status, 2);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^nnf-env jobid: invalid Flux job id "\.\.\/etc\/passwd": .*accepted encodings/);
  const ctl = run('f\x1b[2J');
  t.equal(ctl.status, 2);
  t.notMatch(ctl.stderr, /\x1b/, 'control characters are escaped');
});

t.test('usage errors', async (t) => {
  const r = run('--to', 'octal', '1');
  t.not(r.status, 0);
  t.match(r.stderr, /octal/);
  const both = run('--all', '--to', 'dec', '1');
  t.not(both.status, 0);
  t.match(both.stderr, /cannot be used with/);
  const help = run('--help');
  t.equal(help.status, 0);
  t.match(help.stdout, /f58plain/);
  t.match(help.stdout, /Exit status/);
});
