/** `nnf-env demo` (what `npm start` runs): ends by itself with exit 0 and shows the three things. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { nnfEnvBin } from '../helpers/paths.js';
import { runDemo } from '../../src/bin/demo.js';

t.test('nnf-env demo runs end to end and exits 0', async (t) => {
  const proc = spawn(process.execPath, [nnfEnvBin, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  t.equal(code, 0, err);
  t.match(out, /prolog: job fkEPGJX8vhd delivered/);
  t.match(out, /=== What an admin sees/);
  t.match(out, /# BEGIN nnf-env managed block[^\n]*\n127\.0\.0\.1\s+local-rabbit\n/);
  t.match(out, /=== What the job's user sees/);
  t.match(out, /^NNF_ENV_LOCAL_RABBIT='rabbit-demo'$/m);
  t.match(out, /^DW_JOB_scratch='\/mnt\/nnf\//m);
  t.match(out, /PORT\s+REACHABLE\s+ATTEMPTS/);
  t.match(out, /^\d+\s+yes\s+\d+/m, 'the sample container\'s ports are reachable');
  const sandbox = /sandbox (\S+)/.exec(out)?.[1];
  t.ok(sandbox && !existsSync(sandbox), 'sandbox removed');
  t.equal(err.trim(), '', 'nothing on stderr');
});

t.test('--keep-running stays up until told, prints the kubectl command', async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  let release!: () => void;
  const until = new Promise<void>((r) => (release = r));
  const done = runDemo({ keepRunning: true, out, until });
  for (let i = 0; i < 300 && !/Ctrl-C to stop/.test(text); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(text, /kubectl --kubeconfig \S+\/kubeconfig get workflows/);
  const kubeconfig = /kubectl --kubeconfig (\S+) get workflows/.exec(text)![1]!;
  t.ok(existsSync(kubeconfig), 'the kubeconfig is there while running');
  release();
  t.equal(await done, 0);
  t.notOk(existsSync(kubeconfig), 'cleaned up after');
});
