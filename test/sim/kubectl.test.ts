/**
 * The real kubectl against the simulator, with the kubeconfig the simulator wrote: each verb
 * the issue names, plain HTTP and HTTPS with the generated CA and a bearer token.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import YAML from 'yaml';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { dwsResource } from '../../src/kube/resource.js';
import type { Workflow } from '../../src/domain/dws-types.js';
import { fixture } from '../helpers/paths.js';
import { waitFor } from './client.js';

const WORKFLOWS = dwsResource('workflows', 'v1alpha7');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Ctx {
  dir: string;
  kubeconfig: string;
  env: NodeJS.ProcessEnv;
}

async function setup(t: Test, sim: Simulator): Promise<Ctx> {
  const dir = await mkdtemp(join(tmpdir(), 'nnf-env-kubectl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  // Own discovery cache and HOME: nothing shared between tests or with the user's ~/.kube.
  const env = { ...process.env, KUBECACHEDIR: join(dir, 'cache'), HOME: dir, KUBECONFIG: '' };
  return { dir, kubeconfig, env };
}

function kubectl(c: Ctx, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', c.kubeconfig, '--request-timeout=20s', ...args], { env: c.env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Columns of `kubectl get` output, by header. */
function parseTable(out: string): Array<Record<string, string>> {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]!.split(/\s+/);
  return lines.slice(1).map((l) => Object.fromEntries(l.split(/\s+/).map((v, i) => [header[i] ?? `col${i}`, v])));
}

/** The fixture without the server-owned fields kube-apiserver refuses on create. */
async function fixtureForApply(name: string, rename: string): Promise<string> {
  const doc = YAML.parse(await readFile(fixture(name), 'utf8')) as Workflow;
  delete doc.metadata.resourceVersion;
  delete doc.metadata.uid;
  doc.metadata.name = rename;
  return YAML.stringify(doc);
}

t.test('kubectl version is usable', async (t) => {
  const r = await new Promise<Run>((resolve) =>
    execFile('kubectl', ['version', '--client'], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
  );
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Client Version/);
});

t.test('kubectl over HTTP: get (Table), get -o json, get -w, apply, patch, delete', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0' });
  t.teardown(() => sim.close());
  const c = await setup(t, sim);
  sim.submitJob({ jobId: 321103304048246784n, userID: 1050 });
  const name = 'fluxjob-321103304048246784';
  await waitFor('PreRun', () => sim.get<Workflow>(WORKFLOWS, 'default', name)?.status?.ready === true && sim.get<Workflow>(WORKFLOWS, 'default', name)?.status?.state === 'PreRun');

  // get: the CRD's printer columns, filled in by the server.
  const get = await kubectl(c, ['get', 'workflows']);
  t.equal(get.code, 0, get.stderr);
  t.match(get.stdout.split('\n')[0], /^NAME\s+STATE\s+READY\s+STATUS\s+JOBID\s+AGE\s*$/);
  const rows = parseTable(get.stdout);
  t.match(rows, [{ NAME: name, STATE: 'PreRun', READY: 'true', STATUS: 'Completed', JOBID: 'fkEPGJX8vhd', AGE: /^\d+[sm]/ }]);
  const wide = await kubectl(c, ['get', 'workflow', '-o', 'wide']);
  t.match(wide.stdout.split('\n')[0], /DESIREDSTATE/, 'singular name and -o wide columns');

  // get -o json: the stored object.
  const json = await kubectl(c, ['get', 'workflow', name, '-o', 'json']);
  t.equal(json.code, 0, json.stderr);
  t.same(JSON.parse(json.stdout), sim.get(WORKFLOWS, 'default', name));
  const v6 = await kubectl(c, ['get', `workflows.v1alpha6.dataworkflowservices.github.io`, name, '-o', 'jsonpath={.apiVersion}']);
  t.equal(v6.stdout, 'dataworkflowservices.github.io/v1alpha6', 'the older version is served too');
  const missing = await kubectl(c, ['get', 'workflow', 'nope']);
  t.not(missing.code, 0);
  t.match(missing.stderr, /workflows.dataworkflowservices.github.io "nope" not found/);
  const others = await kubectl(c, ['get', 'computes,systemconfigurations,storages,nodes', '-A']);
  t.equal(others.code, 0, others.stderr);
  t.match(others.stdout, /node\/rabbit-sim\s+Ready/);

  // get -w: the list, then a line for a workflow created while watching.
  const watcher = spawn('kubectl', ['--kubeconfig', c.kubeconfig, 'get', 'workflows', '-w'], { env: c.env });
  t.teardown(() => {
    watcher.kill('SIGKILL');
  });
  let out = '';
  watcher.stdout.setEncoding('utf8');
  watcher.stdout.on('data', (d: string) => (out += d));
  await waitFor('kubectl get -w lists', () => out.includes(name), 20_000);
  sim.submitJob({ jobId: 42n, userID: 7 });
  await waitFor('kubectl get -w shows the new workflow', () => /fluxjob-42\s+PreRun\s+true\s+Completed/.test(out), 20_000);
  watcher.kill('SIGTERM');
  t.match(out.split('\n')[0], /^NAME\s+STATE\s+READY\s+STATUS\s+JOBID\s+AGE/);
  t.ok(out.split('\n').filter((l) => l.startsWith('fluxjob-42')).length >= 3, 'one line per change');

  // apply: create, then configure (a three-way merge patch).
  const file = join(c.dir, 'wf.yaml');
  await writeFile(file, await fixtureForApply('workflow-prerun-ready.yaml', 'applied'));
  const created = await kubectl(c, ['apply', '-f', file]);
  t.equal(created.code, 0, created.stderr);
  t.match(created.stdout, /workflow.dataworkflowservices.github.io\/applied created/);
  const stored = sim.get<Workflow>(WORKFLOWS, 'default', 'applied');
  t.equal(stored?.spec.jobID, 'fkEPGJX8vhd');
  t.ok(stored?.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], 'last-applied annotation');
  await writeFile(file, (await readFile(file, 'utf8')).replace('userID: 1050', 'userID: 2000'));
  const configured = await kubectl(c, ['apply', '-f', file]);
  t.equal(configured.code, 0, configured.stderr);
  t.match(configured.stdout, /applied configured/);
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'applied')?.spec.userID, 2000);

  // patch: merge and json; strategic merge is refused for a custom resource (415).
  const merge = await kubectl(c, ['patch', 'workflow', 'applied', '--type=merge', '-p', '{"spec":{"hurry":true}}']);
  t.equal(merge.code, 0, merge.stderr);
  t.match(merge.stdout, /applied patched/);
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'applied')?.spec.hurry, true);
  const jp = await kubectl(c, ['patch', 'workflow', 'applied', '--type=json', '-p', '[{"op":"replace","path":"/spec/groupID","value":3000},{"op":"add","path":"/metadata/labels","value":{"k":"v"}}]']);
  t.equal(jp.code, 0, jp.stderr);
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'applied')?.spec.groupID, 3000);
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'applied')?.metadata.labels?.k, 'v');
  const smp = await kubectl(c, ['patch', 'workflow', 'applied', '-p', '{"spec":{"hurry":false}}']);
  t.not(smp.code, 0);
  t.match(smp.stderr, /strategic-merge-patch\+json is not supported|unknown format/);
  const labelled = await kubectl(c, ['get', 'workflows', '-l', 'k=v', '-o', 'name']);
  t.equal(labelled.stdout.trim(), 'workflow.dataworkflowservices.github.io/applied', 'label selector');

  // delete: kubectl waits until the object is gone.
  const del = await kubectl(c, ['delete', 'workflow', 'fluxjob-42']);
  t.equal(del.code, 0, del.stderr);
  t.match(del.stdout, /"fluxjob-42" deleted/);
  t.equal(sim.get(WORKFLOWS, 'default', 'fluxjob-42'), undefined);
  // The fixture carries Flux's finalizer: deletion waits for it to be removed.
  const marked = await kubectl(c, ['delete', 'workflow', 'applied', '--wait=false']);
  t.equal(marked.code, 0, marked.stderr);
  t.ok(sim.get<Workflow>(WORKFLOWS, 'default', 'applied')?.metadata.deletionTimestamp, 'marked for deletion');
  const unfinalize = await kubectl(c, ['patch', 'workflow', 'applied', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
  t.equal(unfinalize.code, 0, unfinalize.stderr);
  t.equal(sim.get(WORKFLOWS, 'default', 'applied'), undefined, 'gone with its finalizer');
});

t.test('kubectl over HTTPS with the generated CA and a bearer token', async (t) => {
  const sim = await startSimulator({ stepDelayMs: 2, ports: '0', tls: true, token: 'tok-123' });
  t.teardown(() => sim.close());
  t.match(sim.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.match(sim.caPem, /BEGIN CERTIFICATE/);
  const c = await setup(t, sim);
  const kc = YAML.parse(await readFile(c.kubeconfig, 'utf8'));
  t.equal(kc.clusters[0].cluster['certificate-authority'], `${c.kubeconfig}.ca.crt`, 'the CA file beside the kubeconfig');
  t.equal(await readFile(`${c.kubeconfig}.ca.crt`, 'utf8'), sim.caPem);
  t.equal(kc.users[0].user.token, 'tok-123');

  sim.submitJob({ jobId: 9n, userID: 1 });
  await waitFor('PreRun', () => sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-9')?.status?.ready === true && sim.get<Workflow>(WORKFLOWS, 'default', 'fluxjob-9')?.status?.state === 'PreRun');
  const get = await kubectl(c, ['get', 'workflows']);
  t.equal(get.code, 0, get.stderr);
  t.match(parseTable(get.stdout), [{ NAME: 'fluxjob-9', STATE: 'PreRun', READY: 'true' }]);

  const file = join(c.dir, 'wf.yaml');
  await writeFile(file, await fixtureForApply('workflow-prerun-inprogress.yaml', 'secure'));
  const apply = await kubectl(c, ['apply', '-f', file]);
  t.equal(apply.code, 0, apply.stderr);
  // create -f validates on the server too (OpenAPI v3 says the server takes fieldValidation).
  const file2 = join(c.dir, 'wf2.yaml');
  await writeFile(file2, await fixtureForApply('workflow-prerun-inprogress.yaml', 'secure-2'));
  const create = await kubectl(c, ['create', '-f', file2]);
  t.equal(create.code, 0, create.stderr);
  t.match(create.stdout, /secure-2 created/);
  const merge = await kubectl(c, ['patch', 'workflow', 'secure', '--type=merge', '-p', '{"spec":{"hurry":true}}']);
  t.equal(merge.code, 0, merge.stderr);
  const jp = await kubectl(c, ['patch', 'workflow', 'secure', '--type=json', '-p', '[{"op":"test","path":"/spec/hurry","value":true},{"op":"replace","path":"/spec/userID","value":1}]']);
  t.equal(jp.code, 0, jp.stderr);
  t.equal(sim.get<Workflow>(WORKFLOWS, 'default', 'secure')?.spec.userID, 1);
  const del = await kubectl(c, ['delete', 'workflow', 'secure']);
  t.equal(del.code, 0, del.stderr);
  t.equal(sim.get(WORKFLOWS, 'default', 'secure'), undefined);

  const bad = await kubectl(c, ['--token', 'wrong', 'get', 'workflows']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /Unauthorized|must be logged in/);
  // Without the CA kubectl refuses the certificate.
  const noCa = YAML.parse(await readFile(c.kubeconfig, 'utf8'));
  delete noCa.clusters[0].cluster['certificate-authority'];
  const noCaFile = join(c.dir, 'no-ca');
  await writeFile(noCaFile, YAML.stringify(noCa));
  const untrusted = await kubectl({ ...c, kubeconfig: noCaFile }, ['get', 'workflows']);
  t.not(untrusted.code, 0);
  t.match(untrusted.stderr, /certificate/);
});
