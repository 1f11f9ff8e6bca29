/** `nnf-env sim` as a user runs it: a process that prints where it listens and stops on a signal. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { parseListen } from '../../src/sim/command.js';
import { nnfEnvBin } from '../helpers/paths.js';
import { call, waitFor } from './client.js';

interface Started {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startSim(args: string[]): Started {
  const child = spawn(process.execPath, [nnfEnvBin, 'sim', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, lines, stderr: () => err, exit };
}

t.test('parseListen', async (t) => {
  t.same(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListen('[::1]:6443'), { host: '::1', port: 6443 });
  t.same(parseListen(':8080'), { host: '127.0.0.1', port: 8080 });
  t.throws(() => parseListen('localhost'), { code: 'SIM_BAD_LISTEN' } as object as Error);
  t.throws(() => parseListen('127.0.0.1:70000'), { code: 'SIM_BAD_LISTEN' } as object as Error);
  t.throws(() => parseListen('example.com:80'), { code: 'SIM_BAD_LISTEN' } as object as Error);
});

t.test('nnf-env sim: prints the URL, writes the kubeconfig, serves, exits 0 on SIGTERM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-sim-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // In a directory that does not exist yet: the simulator creates it.
  const kubeconfig = join(dir, 'new', 'kubeconfig');
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'file-token\n');
  const s = startSim(['--listen', '127.0.0.1:0', '--kubeconfig-out', kubeconfig, '--tls', '--token-file', tokenFile, '--ports', '0', '--step-delay', '2', '--fault-429-every', '3', '--log-level', 'silent']);
  t.teardown(() => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  });
  await waitFor('three lines', () => s.lines.length >= 3 || s.child.exitCode !== null, 15_000);
  t.match(s.lines[0], /^nnf-env sim: listening on https:\/\/127\.0\.0\.1:\d+$/, s.stderr());
  t.equal(s.lines[1], `nnf-env sim: kubeconfig written to ${kubeconfig} (CA certificate: ${kubeconfig}.ca.crt)`);
  t.equal(s.lines[2], `nnf-env sim: try: kubectl --kubeconfig ${kubeconfig} get workflows`);
  const url = s.lines[0]!.replace('nnf-env sim: listening on ', '');
  const kc = YAML.parse(await readFile(kubeconfig, 'utf8'));
  t.equal(kc.clusters[0].cluster.server, url);
  t.equal(kc.users[0].user.token, 'file-token');
  const conn = { url, caPem: await readFile(`${kubeconfig}.ca.crt`, 'utf8'), token: 'file-token' };
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await call(conn, 'GET', '/version')).status);
  t.same(statuses, [200, 200, 429], '--fault-429-every 3');
  t.equal((await call({ ...conn, token: 'nope' }, 'GET', '/version')).status, 401);

  s.child.kill('SIGTERM');
  const { code } = await s.exit;
  t.equal(code, 0, 'exit 0 after SIGTERM');
});

t.test('nnf-env sim: SIGINT works too; plain HTTP without a kubeconfig', async (t) => {
  const s = startSim(['--listen', '127.0.0.1:0', '--no-controllers', '--no-user-containers', '--log-level', 'silent']);
  t.teardown(() => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  });
  await waitFor('two lines', () => s.lines.length >= 2 || s.child.exitCode !== null, 15_000);
  t.match(s.lines[0], /^nnf-env sim: listening on http:\/\/127\.0\.0\.1:\d+$/, s.stderr());
  t.match(s.lines[1], /no kubeconfig written/);
  const url = s.lines[0]!.replace('nnf-env sim: listening on ', '');
  t.equal((await call({ url }, 'GET', '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/workflows')).status, 200);
  s.child.kill('SIGINT');
  t.equal((await s.exit).code, 0);
});

t.test('nnf-env sim: bad flags exit 2 with a message', async (t) => {
  const bad = startSim(['--listen', 'nowhere']);
  const { code } = await bad.exit;
  t.equal(code, 2);
  t.match(bad.stderr(), /--listen "nowhere" is not HOST:PORT/);
  const badPorts = startSim(['--ports', 'x-y']);
  t.not((await badPorts.exit).code, 0);
  t.match(badPorts.stderr(), /ports/);
});
