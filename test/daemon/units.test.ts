/** Small daemon parts: tracking records, user database, systemd notifications, Node addresses, Computes. */
import t from 'tap';
import { chmod, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TrackedRecords, canonicalJobName, parseTrackedRecord } from '../../src/daemon/tracked-records.js';
import { gidFromGroup, groupId, primaryGidFromPasswd, primaryGidOf } from '../../src/fs/user-db.js';
import { isValidId } from '../../src/contract/ids.js';
import { createSystemdNotifier, watchdogIntervalMs } from '../../src/daemon/systemd.js';
import { HostAddressResolver, addressFromNode } from '../../src/net/host-address.js';
import { computesListsNode, jobIdOfWorkflow } from '../../src/daemon/computes-discovery.js';
import type { Workflow } from '../../src/domain/dws-types.js';

t.test('tracking records', async (t) => {
  t.equal(canonicalJobName('fNH'), 1234n);
  t.equal(canonicalJobName('f111'), undefined, 'decodes to 0 but is not canonical');
  t.equal(canonicalJobName('fkEPGJX8vhd'), 321103304048246784n);
  for (const bad of ['1234', '..', 'fNH.env', 'f0', 'fl', '', 'f' + '2'.repeat(20)]) t.equal(canonicalJobName(bad), undefined, bad);
  t.match(parseTrackedRecord('fNH', '{"id":"fNH","userID":5,"trackedAt":"2026-01-01T00:00:00Z"}'), { id: 'fNH', userID: 5, source: 'api' });
  t.equal(parseTrackedRecord('fNH', '{"id":"fNJ","userID":5,"trackedAt":"2026-01-01T00:00:00Z"}'), 'id "fNJ" differs from the file name');
  t.equal(parseTrackedRecord('fNH', '{"id":"fNH","userID":-1,"trackedAt":"2026-01-01T00:00:00Z"}'), 'bad userID');
  t.equal(parseTrackedRecord('fNH', 'x'), 'not JSON');

  const dir = t.testdir({});
  const recs = new TrackedRecords(dir);
  await recs.ensureDir();
  await recs.write({ version: 1, id: 'fNH', userID: 7, trackedAt: '2026-01-01T00:00:00.000Z', source: 'computes', workflowName: 'fluxjob-1234' });
  t.equal((await stat(recs.dir)).mode & 0o777, 0o700, 'records directory is private');
  t.equal((await stat(join(recs.dir, 'fNH'))).mode & 0o777, 0o600);
  await writeFile(join(recs.dir, 'garbage'), 'x');
  await writeFile(join(recs.dir, 'f2'), '{"id":"f2"}');
  await symlink('/etc/passwd', join(recs.dir, 'f3'));
  const { records, dropped } = await recs.readAll();
  t.same(records, [{ version: 1, id: 'fNH', userID: 7, trackedAt: '2026-01-01T00:00:00.000Z', source: 'computes', workflowName: 'fluxjob-1234' }]);
  t.same(dropped.map((d) => d.name).sort(), ['f2', 'f3', 'garbage']);
  t.same((await readdir(recs.dir)).sort(), ['fNH'], 'broken records and symlinks removed (symlink itself, not its target)');
  t.ok((await readFile('/etc/passwd', 'utf8')).length > 0, 'symlink target untouched');
  await recs.remove('fNH');
  t.same(await readdir(recs.dir), []);
});

t.test('user database', async (t) => {
  const passwd = 'root:x:0:0::/root:/bin/sh\nalice:x:1050:1051::/home/a:/bin/sh\nbroken\n';
  t.equal(primaryGidFromPasswd(passwd, 1050), 1051);
  t.equal(primaryGidFromPasswd(passwd, 1), undefined);
  const group = 'root:x:0:\nflux:x:990:alice\n';
  t.equal(gidFromGroup(group, 'flux'), 990);
  t.equal(gidFromGroup(group, '77'), 77);
  t.equal(gidFromGroup(group, 'nope'), undefined);
  const dir = t.testdir({ passwd, group });
  t.equal(await primaryGidOf(1050, { passwdFile: join(dir, 'passwd'), getent: false }), 1051);
  t.equal(await primaryGidOf(4242, { passwdFile: join(dir, 'passwd'), getent: false }), undefined);
  t.equal(await groupId('flux', { groupFile: join(dir, 'group'), getent: false }), 990);
  t.equal(await primaryGidOf(0), 0, 'root from the real database');
  t.ok(isValidId(0));
  t.notOk(isValidId(0xffffffff));
  t.notOk(isValidId(-1));
  t.notOk(isValidId(1.5));
});

t.test('systemd notifications through a stand-in systemd-notify', async (t) => {
  t.equal(watchdogIntervalMs({}), undefined);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '60000000' }), 30_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '1' }, 2), undefined, 'meant for another process');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '1000' }), 100, 'floor');
  const dir = t.testdir({});
  const log = join(dir, 'log');
  const fake = join(dir, 'notify');
  await writeFile(fake, `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> ${log}\n`);
  await chmod(fake, 0o755);
  const off = createSystemdNotifier({ env: {}, command: fake });
  t.equal(off.enabled, false);
  await off.ready();
  const n = createSystemdNotifier({ env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '400000' }, command: fake });
  t.equal(n.enabled, true);
  await n.ready('serving');
  let healthy = true;
  const stop = n.startWatchdog(() => healthy);
  await new Promise((r) => setTimeout(r, 500));
  healthy = false;
  const before = (await readFile(log, 'utf8')).split('\n').filter((l) => l.includes('WATCHDOG=1')).length;
  await new Promise((r) => setTimeout(r, 500));
  stop();
  const lines = (await readFile(log, 'utf8')).trim().split('\n');
  t.equal(lines[0], '/run/x --ready --status=serving');
  t.ok(before >= 1, 'watchdog pinged while healthy');
  const after = lines.filter((l) => l.includes('WATCHDOG=1')).length;
  t.ok(after <= before + 1, 'no pings once unhealthy (one may have been in flight)');
});

t.test('addresses', async (t) => {
  t.equal(addressFromNode({ metadata: { name: 'r' }, status: { addresses: [{ type: 'Hostname', address: 'r' }, { type: 'ExternalIP', address: '1.2.3.4' }, { type: 'InternalIP', address: 'fd00::5' }] } }), 'fd00::5', 'InternalIP first, IPv6 too');
  t.equal(addressFromNode({ metadata: { name: 'r' }, status: { addresses: [{ type: 'ExternalIP', address: '1.2.3.4' }] } }), '1.2.3.4');
  t.equal(addressFromNode({ metadata: { name: 'r' }, status: { addresses: [{ type: 'InternalIP', address: 'not-an-ip' }] } }), null);
  t.equal(addressFromNode(undefined), null);
  const r = new HostAddressResolver({ client: undefined, lookup: async (n) => (n === 'known' ? '10.9.8.7' : Promise.reject(new Error('ENOTFOUND'))) });
  t.same(await r.resolve('known'), { address: '10.9.8.7', source: 'dns', reason: null });
  t.same(await r.resolve('::1'), { address: '::1', source: 'config', reason: null });
  t.match(await r.resolve('unknown'), { address: null, source: null, reason: /DNS lookup of unknown failed/ });
});

t.test('computes', async (t) => {
  t.ok(computesListsNode({ metadata: { name: 'w' }, data: [{ name: 'a' }, { name: 'compute-01' }] }, 'compute-01'));
  t.ok(computesListsNode({ metadata: { name: 'w' }, data: [{ name: 'compute-01' }] }, 'compute-01.example.org'));
  t.notOk(computesListsNode({ metadata: { name: 'w' } }, 'compute-01'));
  t.notOk(computesListsNode(undefined, 'compute-01'));
  const wf = (jobID: unknown) => ({ metadata: { name: 'w' }, spec: { jobID } }) as unknown as Workflow;
  t.equal(jobIdOfWorkflow(wf('fNH')), 1234n);
  t.equal(jobIdOfWorkflow(wf(1234)), 1234n);
  t.equal(jobIdOfWorkflow(wf('garbage')), undefined);
  t.equal(jobIdOfWorkflow(wf(1.5)), undefined);
});
