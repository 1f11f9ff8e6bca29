/**
 * The systemd unit: its settings, `systemd-analyze verify`, and the hardening combination it
 * asks for reproduced with `unshare -m` around the real nnf-envd: /etc read-only
 * (ProtectSystem=strict) with /etc/hosts and /etc/local-rabbit.conf bind-mounted writable
 * (ReadWritePaths). The hosts entry and local-rabbit.conf must still be written, and jobs
 * delivered.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { getJob, health, trackJob } from '../../src/api/client.js';
import { flagName, type ConfigKey } from '../../src/config/schema.js';
import { nnfEnvdBin, repoRoot } from '../helpers/paths.js';
import { mountNamespaceUnavailable } from '../fs/mount-namespace.js';
import { SAMPLE_HOSTS, startHarness, eventually, newJobId } from '../daemon/harness.js';

const UNIT = join(repoRoot, 'systemd', 'nnf-envd.service');

function settings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const x = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (x) m.set(x[1]!, [...(m.get(x[1]!) ?? []), x[2]!]);
  }
  return m;
}

t.test('unit settings', async (t) => {
  const text = await readFile(UNIT, 'utf8');
  const s = settings(text);
  const one = (k: string) => s.get(k)?.[0];
  t.equal(one('Type'), 'notify');
  t.equal(one('NotifyAccess'), 'all');
  t.equal(one('ExecStart'), '/usr/local/sbin/nnf-envd', 'the path `nnf-env install` puts the daemon at');
  t.equal(one('WatchdogSec'), '120', 'a hang is caught within 2 min; pings (a systemd-notify child each) once a minute');
  t.equal(one('Restart'), 'on-failure');
  t.equal(one('RuntimeDirectory'), 'nnf-env');
  t.equal(one('RuntimeDirectoryPreserve'), 'yes');
  t.equal(one('ProtectSystem'), 'strict');
  t.match(one('ReadWritePaths'), /\/etc\/hosts/);
  t.match(one('RestrictAddressFamilies'), /AF_UNIX AF_INET AF_INET6/);
  t.match(one('CapabilityBoundingSet'), /CAP_CHOWN/);
  t.notOk(s.has('MemoryDenyWriteExecute'), 'MemoryDenyWriteExecute would crash V8');
  t.equal(one('RestartPreventExitStatus'), '78', 'config errors (EX_CONFIG) are not restarted');
});

t.test('systemd-analyze verify', { skip: spawnSync('systemd-analyze', ['--version']).error ? 'systemd-analyze not installed' : false }, async (t) => {
  const dir = t.testdir({});
  // verify checks that ExecStart exists: point it at something that does.
  await writeFile(join(dir, 'nnf-envd.service'), (await readFile(UNIT, 'utf8')).replace('/usr/local/sbin/nnf-envd', process.execPath));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'nnf-envd.service')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warnings');
});

const mountWhy = mountNamespaceUnavailable();

t.test('ProtectSystem=strict + ReadWritePaths=/etc/hosts, reproduced with unshare -m', { skip: mountWhy ?? false }, async (t) => {
  const h = await startHarness({ noDaemon: true });
  t.teardown(() => h.close());
  const etc = join(h.dir, 'etc');
  await mkdir(etc);
  const hosts = join(etc, 'hosts');
  const conf = join(etc, 'local-rabbit.conf');
  await writeFile(hosts, SAMPLE_HOSTS);
  await writeFile(conf, '');
  const ino = (await stat(hosts)).ino;
  const flags = { ...h.flags, HOSTS_FILE: hosts, LOCAL_RABBIT_CONF: conf, LOG_LEVEL: 'info', LOG_FORMAT: 'json' };
  const args = Object.entries(flags).map(([k, v]) => `${flagName(k as ConfigKey)}=${v}`);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = [
    `mount --bind ${q(etc)} ${q(etc)}`,
    `mount --bind ${q(hosts)} ${q(hosts)}`,
    `mount --bind ${q(conf)} ${q(conf)}`,
    `mount -o remount,bind,ro ${q(etc)}`,
    // Prove the sandbox: a new file in etc cannot be created.
    `if touch ${q(join(etc, 'probe'))} 2>/dev/null; then echo 'etc is writable' >&2; exit 99; fi`,
    `exec ${q(process.execPath)} ${q(nnfEnvdBin)} ${args.map(q).join(' ')}`,
  ].join(' && ');
  const proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  t.teardown(() => proc.kill('SIGKILL'));
  await eventually(`daemon healthy in the sandbox (${out.slice(-400)})`, async () => {
    if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}: ${out}`);
    return health(h.socketPath, { timeoutMs: 1000 }).catch(() => false);
  }, 20_000, 50);

  const text = await readFile(hosts, 'utf8');
  t.match(text, /# BEGIN nnf-env managed block[^\n]*\n127\.0\.0\.1\s+local-rabbit\n# END nnf-env managed block\n/, 'hosts block written');
  t.ok(text.startsWith(SAMPLE_HOSTS), 'admin lines kept');
  t.equal((await stat(hosts)).ino, ino, 'written in place (same inode): the rename was refused');
  t.equal(await readFile(conf, 'utf8'), 'rabbit-sim\n', 'local-rabbit.conf written in place');
  const id = newJobId();
  h.sim.submitJob({ jobId: id, userID: 1050 });
  await trackJob(h.socketPath, id.toString(), 1050);
  t.equal((await getJob(h.socketPath, id.toString(), { wait: true, timeoutMs: 15_000 })).phase, 'delivered', 'jobs delivered in the sandbox');
  proc.kill('SIGTERM');
  t.equal(await exited, 0);
  t.match(out, /hosts entry written/);
  t.match(out, /in-place|in place/);
});
