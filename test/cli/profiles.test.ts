/**
 * `nnf-env profiles` and `nnf-env profiles --check FILE` through the built CLI, against a real
 * nnf-envd (in-process) whose profile cache watches the simulator: the listing, each refusal
 * with nnf-sos's message (and that the simulator really refuses the same script), the public
 * profiles.json for users who may not open the socket, a watched change, and Flux-native nodes.
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { startHarness, type Harness } from '../daemon/harness.js';
import { eventually } from '../helpers/eventually.js';
import { runCli } from './job-files.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { dwsResource } from '../../src/kube/resource.js';
import type { ContainerProfile } from '../../src/domain/container-profile.js';
import { dwLinesOf, mayUse } from '../../src/cli/commands/profiles.js';

const PROFILES = { group: 'nnf.cray.hpe.com', version: 'v1alpha11', plural: 'nnfcontainerprofiles', kind: 'NnfContainerProfile', namespaced: true };
const WORKFLOWS = dwsResource('workflows', 'v1alpha7');
const restricted: ContainerProfile = { metadata: { name: 'team-only', namespace: 'nnf-system' }, data: { numPorts: 1, userID: 1050, groupID: 2000, spec: { containers: [{ name: 'app', image: 'team/app:3' }] } } };

let h: Harness;
t.before(async () => {
  h = await startHarness({ sim: { profiles: [restricted] } });
  await chmod(h.dir, 0o755); // the nobody user reads profiles.json below
  await writeFile(join(h.dir, 'node.conf'), '# a node with the defaults\n');
});
t.teardown(() => h.close());

const env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: h.dir, NNF_ENV_RUNTIME_DIR: h.runtimeDir, NNF_ENV_CONFIG: join(h.dir, 'node.conf') });
const cli = (args: string[], opts: { uid?: number; gid?: number } = {}) => runCli(['profiles', '--socket', h.socketPath, ...args], { env: env(), ...opts });

async function script(name: string, lines: string[]): Promise<string> {
  const p = join(h.dir, name);
  await writeFile(p, ['#!/bin/sh', '#FLUX: -N1', ...lines, 'srun ./client "$NNF_CONTAINER_PORTS"', ''].join('\n'));
  return p;
}

t.test('pure helpers', async (t) => {
  t.same(dwLinesOf('#!/bin/sh\n  #DW jobdw  type=gfs2 name=a\n# DW not\n#DWX no\n#DW container name=c profile=p\n'), ['#DW jobdw type=gfs2 name=a', '#DW container name=c profile=p']);
  t.equal(mayUse({ userID: null, groupID: null }, 1, 1), true);
  t.equal(mayUse({ userID: 5, groupID: null }, 5, 9), true);
  t.equal(mayUse({ userID: 5, groupID: 7 }, 5, 9), false, 'both must match when both are set');
});

t.test('the listing: images, ports, MPI, storages, usable by this uid/gid', async (t) => {
  await eventually('the profile cache', async () => (await cli(['--json'])).code === 0, 10_000);
  const r = await cli(['--json', '--uid', '1050', '--gid', '2000']);
  t.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { uid: number; profiles: Array<{ name: string; mpi: boolean; images: string[]; ports: number; usable: boolean; storages: Array<{ name: string; optional: boolean }> }> };
  const by = new Map(doc.profiles.map((p) => [p.name, p]));
  t.same([...by.keys()].sort(), ['example-mpi-webserver', 'example-success', 'mpi-red-rock-slushy', 'red-rock-slushy', 'team-only']);
  t.match(by.get('red-rock-slushy'), { mpi: false, images: ['dean/red-rock-slushy:v1.0'], ports: 2, usable: true, storages: [{ name: 'DW_JOB_foo_local_storage', optional: false }, { name: 'DW_PERSISTENT_foo_persistent_storage', optional: true }] });
  t.match(by.get('example-mpi-webserver'), { mpi: true, ports: 1 });
  t.equal(by.get('team-only')?.usable, true);
  const other = JSON.parse((await cli(['--json', '--uid', '1050', '--gid', '1050'])).stdout) as typeof doc;
  t.equal(other.profiles.find((p) => p.name === 'team-only')?.usable, false, 'the gid does not match');
  const table = await cli(['--uid', '7', '--gid', '7']);
  t.match(table.stdout, /^PROFILE\s+MPI\s+IMAGE\s+PORTS/m);
  t.match(table.stdout, /^team-only\s+-\s+team\/app:3\s+1\s+-\s+uid 1050 \+ gid 2000\s+no$/m);
  t.match(table.stdout, /^red-rock-slushy\s+-\s+dean\/red-rock-slushy:v1\.0\s+2\s+DW_JOB_foo_local_storage,DW_PERSISTENT_foo_persistent_storage\?\s+-\s+yes$/m);
});

t.test('--check: each refusal with nnf-sos\'s message, the same one the simulated workflow gets', async (t) => {
  const cases: Array<{ file: string; lines: string[]; uid: number; gid: number; message?: string }> = [
    { file: 'unknown.sh', lines: ['#DW container name=c profile=nope'], uid: 1, gid: 1, message: 'DW Directive 0: Internal error: no valid container profile found' },
    { file: 'uid.sh', lines: ['#DW container name=c profile=team-only'], uid: 1, gid: 2000, message: "DW Directive 0: User error: container profile 'team-only' is restricted to UserID 1050" },
    { file: 'gid.sh', lines: ['#DW container name=c profile=team-only'], uid: 1050, gid: 1, message: "DW Directive 0: User error: container profile 'team-only' is restricted to GroupID 2000" },
    { file: 'storage.sh', lines: ['#DW jobdw type=gfs2 capacity=10GB name=my-gfs2', '#DW container name=c profile=red-rock-slushy'], uid: 1, gid: 1, message: "DW Directive 0: User error: storage 'DW_JOB_foo_local_storage' in container profile 'red-rock-slushy' is not optional: storage argument not found in the supplied arguments" },
    { file: 'nojobdw.sh', lines: ['#DW container name=c profile=red-rock-slushy DW_JOB_foo_local_storage=my-gfs2'], uid: 1, gid: 1, message: "DW Directive 0: User error: jobdw directive mentioning 'my-gfs2' not found" },
    { file: 'ok.sh', lines: ['#DW jobdw type=gfs2 capacity=10GB name=my-gfs2', '#DW container name=c profile=red-rock-slushy DW_JOB_foo_local_storage=my-gfs2'], uid: 1, gid: 1 },
  ];
  let jobId = 900n;
  for (const c of cases) {
    const path = await script(c.file, c.lines);
    const r = await cli(['--check', path, '--uid', String(c.uid), '--gid', String(c.gid)]);
    if (c.message === undefined) {
      t.equal(r.code, 0, r.stdout + r.stderr);
      t.equal(r.stdout, `${path}: ok: profile red-rock-slushy, 2 ports in NNF_CONTAINER_PORTS\n`);
    } else {
      t.equal(r.code, 1, `${c.file} refused: exit 1`);
      t.equal(r.stdout, `${path}: REFUSED: nnf-sos fails the workflow in Proposal and Flux raises the job exception:\n  ${c.message}\n`);
      const j = JSON.parse((await cli(['--check', path, '--uid', String(c.uid), '--gid', String(c.gid), '--json'])).stdout) as { refused: boolean; message: string };
      t.match(j, { refused: true, message: c.message });
    }
    // What the checker said is what the simulated nnf-sos does with the same #DW lines.
    const id = jobId++;
    h.sim.submitJob({ jobId: id, userID: c.uid, groupID: c.gid, directives: dwLinesOf(await readFile(path, 'utf8')), stopAt: 'Proposal' });
    const w = await eventually(`fluxjob-${id} Proposal`, () => {
      const o = h.sim.get<Workflow>(WORKFLOWS, 'default', `fluxjob-${id}`);
      return o?.status?.state === 'Proposal' && (o.status.ready || o.status.status === 'Error') ? o : undefined;
    }, 10_000);
    t.equal(w.status?.status === 'Error' ? w.status.message : undefined, c.message, `${c.file}: the simulator agrees`);
  }
  const none = await cli(['--check', await script('plain.sh', ['#DW jobdw type=xfs capacity=1GB name=x'])]);
  t.equal(none.code, 0);
  t.match(none.stdout, /no #DW container directive \(1 #DW line\): nothing to check/);
  const missing = await cli(['--check', join(h.dir, 'no-such.sh')]);
  t.equal(missing.code, 3);
  t.match(missing.stderr, /cannot read .*no-such\.sh/);
});

t.test('a profile added with the watch shows up; users who may not open the socket read profiles.json', async (t) => {
  h.sim.create(PROFILES, { metadata: { name: 'added-later', namespace: 'nnf-system' }, data: { numPorts: 3, spec: { containers: [{ name: 'x', image: 'x:1' }] } } });
  await eventually('added-later listed', async () => (await cli(['--json'])).stdout.includes('added-later'), 10_000);
  const file = join(h.runtimeDir, 'profiles.json');
  await eventually('added-later in profiles.json', async () => (await readFile(file, 'utf8').catch(() => '')).includes('added-later'), 10_000);
  t.equal((await stat(file)).mode & 0o777, 0o644, 'world-readable');
  const asNobody = await cli(['--json'], { uid: 65534, gid: 65534 });
  t.equal(asNobody.code, 0, asNobody.stderr);
  const doc = JSON.parse(asNobody.stdout) as { uid: number; profiles: Array<{ name: string }> };
  t.equal(doc.uid, 65534);
  t.ok(doc.profiles.some((p) => p.name === 'added-later'), 'from profiles.json, the socket being 0660 root');
  const raw = await readFile(file, 'utf8');
  t.notMatch(raw, /users-application|http\.server/, 'no commands leave the daemon');
});

t.test('a Flux-native node says where to run it instead', async (t) => {
  const conf = join(h.dir, 'flux.conf');
  await writeFile(conf, 'ENV_SOURCE=flux\n');
  const r = await runCli(['profiles', '--config', conf], { env: { ...env(), NNF_ENV_CONFIG: conf } });
  t.equal(r.code, 3);
  t.match(r.stderr, /ENV_SOURCE=flux\) and has no Kubernetes access: container profiles cannot be read here \(run nnf-env profiles on a node whose nnf-envd reads Kubernetes/);
});

t.test('status shows the profile cache', async (t) => {
  const r = await runCli(['status', '--socket', h.socketPath], { env: env() });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^profiles\s+\d+ in nnf-system \(nnf\.cray\.hpe\.com\/v1alpha11\)$/m);
});
