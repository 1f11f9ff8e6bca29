/**
 * RBAC for real: `nnf-env doctor` against kube-apiserver with the service-account token bound
 * only to the shipped RBAC example (etc/kubernetes/nnf-env-rbac.yaml). With the role as shipped
 * every check passes; with one rule taken out of the role, doctor names the permission that is
 * now missing and how to grant it (SelfSubjectAccessReview answered by the real authorizer).
 * With the file's commented-out workflow-token role bound, doctor flags Secrets this node does
 * not need (issue 9, least privilege).
 */
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { HOSTS_BEGIN_MARKER, HOSTS_END_MARKER } from '../../src/domain/hosts-block.js';
import { baseEnv, makeSandbox, runCli } from '../cli/job-files.js';
import { reply, startStandIn } from '../cli/stand-in-daemon.js';
import { RBAC_FILE, realApiServerSkipReason, startRealApiServer } from '../helpers/apiserver.js';
import { eventually } from '../helpers/eventually.js';

const skip = await realApiServerSkipReason();
if (skip) {
  t.plan(0, skip);
  process.exit(0);
}

const server = await startRealApiServer();
t.teardown(() => server.stop());
const sb = await makeSandbox();
t.teardown(() => sb.cleanup());

function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--kubeconfig', server.kubeconfig, '--request-timeout=30s', ...args], { env: { ...process.env, KUBECACHEDIR: join(sb.root, 'kube-cache'), HOME: sb.root, KUBECONFIG: '' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

// What a Rabbit system holds (as the admin, who may write them): this node's rabbit in the
// SystemConfiguration, and the rabbit's Node with its address.
const objects = [
  {
    apiVersion: 'dataworkflowservices.github.io/v1alpha7',
    kind: 'SystemConfiguration',
    metadata: { name: 'default', namespace: 'default' },
    spec: { storageNodes: [{ type: 'Rabbit', name: 'rabbit-node-1', computesAccess: [{ name: 'compute-01', index: 0 }] }], ports: ['4000-4999'] },
  },
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'rabbit-node-1' }, spec: {} },
];
const created = await kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
if (created.code !== 0) throw new Error(`kubectl apply: ${created.stderr}`);
// Node status is the kubelet's to write: through the status subresource.
const nodeStatus = await kubectl(['patch', 'node', 'rabbit-node-1', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] } })]);
if (nodeStatus.code !== 0) throw new Error(`kubectl patch node status: ${nodeStatus.stderr}`);

// The rest of a healthy node: hosts entry, Flux scripts, jobs dir, a daemon on the socket.
const hostsFile = join(sb.root, 'hosts');
const localhostAddr = (await lookup('localhost', { verbatim: true })).address;
await writeFile(hostsFile, `${HOSTS_BEGIN_MARKER}\n${localhostAddr}\tlocalhost\n${HOSTS_END_MARKER}\n`);
const fluxDir = join(sb.root, 'flux');
for (const d of ['prolog.d', 'epilog.d']) {
  await mkdir(join(fluxDir, d), { recursive: true });
  await writeFile(join(fluxDir, d, 'nnf-env'), '#!/bin/sh\n');
  await chmod(join(fluxDir, d, 'nnf-env'), 0o755);
}
const daemon = await startStandIn(join(sb.runtimeDir, 'nnf-envd.sock'), (_req, res) => reply(res, 200, { ok: true }));
t.teardown(() => daemon.close());

const conf = join(sb.root, 'nnf-env.conf');
await writeFile(
  conf,
  Object.entries({
    RUNTIME_DIR: sb.runtimeDir,
    NODE_NAME: 'compute-01',
    KUBE_CONNECTION: 'explicit',
    KUBE_SERVER: server.url,
    KUBE_TOKEN_FILE: server.tokenFile,
    KUBE_CA_FILE: server.caFile,
    HOSTS_FILE: hostsFile,
    HOSTS_ALIASES: 'localhost',
    RABBIT_MAPPING_FILE: join(sb.root, 'no-mapping'),
  })
    .map(([k, v]) => `${k}=${v}\n`)
    .join(''),
);
const doctor = () => runCli(['doctor', '--config', conf, '--flux-dir', fluxDir], { env: baseEnv(sb, { NNF_ENV_CONFIG: undefined }) });

t.test('doctor passes with the shipped role', async (t) => {
  const ok = await doctor();
  // No Flux instance here: only the Flux checks may fail; every Kubernetes check passes.
  t.notMatch(ok.stdout, /^FAIL\s+(?!flux)\S/m, ok.stdout + ok.stderr);
  for (const line of [
    /^ok\s+connection\s+https:\/\/127\.0\.0\.1:\d+ /m,
    /^ok\s+api\s+reachable and authenticated; DWS v1alpha7$/m,
    // SelfSubjectAccessReview is served: every verb is checked, not just list.
    /^ok\s+permissions\s+get, list, watch workflows\.dataworkflowservices\.github\.io in namespace default$/m,
    /^ok\s+permissions\s+get, list, watch computes\.dataworkflowservices\.github\.io in namespace default$/m,
    /^ok\s+permissions\s+get, list, watch systemconfigurations\.dataworkflowservices\.github\.io in namespace default$/m,
    /^ok\s+permissions\s+get, list, watch nodes$/m,
    // WORKFLOW_TOKEN is off by default, and the shipped role grants no Secrets.
    /^ok\s+least privilege\s+no access to Secrets; workflows only in default$/m,
    /^ok\s+rabbit\s+rabbit-node-1 \(SystemConfiguration default\/default\)$/m,
    /^ok\s+rabbit address\s+127\.0\.0\.1 \(Node rabbit-node-1\)$/m,
  ]) t.match(ok.stdout, line);
  t.notMatch(ok.stdout, /^(FAIL|warn)\s+(permissions|least privilege)/m);
  t.notMatch(ok.stdout, /secrets/);
});

t.test('doctor names a permission taken out of the role, and its fix', async (t) => {
  const docs = YAML.parseAllDocuments(await readFile(RBAC_FILE, 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; rules?: Array<{ resources: string[] }> });
  const role = docs.find((d) => d.kind === 'Role' && d.metadata.name === 'nnf-env-node')!;
  const rule = role.rules!.find((r) => r.resources.includes('systemconfigurations'))!;
  rule.resources = rule.resources.filter((r) => r !== 'systemconfigurations');
  const applied = await kubectl(['apply', '-f', '-'], JSON.stringify(role));
  t.equal(applied.code, 0, applied.stderr);

  // RBAC takes effect when the authorizer's informer sees the change: wait for doctor to say so.
  let out = '';
  await eventually('doctor sees the narrower role', async () => {
    const r = await doctor();
    out = r.stdout;
    return r.code === 1 && /^FAIL\s+permissions/m.test(r.stdout);
  }, 20_000, 500);
  t.match(out, /^FAIL\s+permissions\s+get, list, watch on systemconfigurations\.dataworkflowservices\.github\.io in namespace default is not allowed: needed for this node's rabbit$/m);
  t.match(out, /fix: grant the identity of .* get, list, watch on systemconfigurations\.dataworkflowservices\.github\.io in namespace default \(a Role\/ClusterRole and a binding\)/);
  // Only that one: the other permissions of the role still pass.
  t.equal((out.match(/^FAIL\s+permissions/gm) ?? []).length, 1);
  t.match(out, /^ok\s+permissions\s+get, list, watch workflows\.dataworkflowservices\.github\.io/m);
  // And what depends on it: the rabbit can no longer be read from the SystemConfiguration.
  t.match(out, /^FAIL\s+rabbit\s+no rabbit found for node compute-01: SystemConfiguration default\/default: .*forbidden/im);
});

t.test('the commented-out workflow-token role, once bound, is flagged unless WORKFLOW_TOKEN needs it', async (t) => {
  // The file's last block, uncommented as an admin would.
  const text = await readFile(RBAC_FILE, 'utf8');
  const block = text.slice(text.indexOf('\n# ---\n# apiVersion:') + 1);
  const yaml = block.split('\n').map((l) => l.replace(/^# ?/, '')).join('\n');
  const docs = YAML.parseAllDocuments(yaml).map((d) => d.toJS() as { kind?: string } | null).filter((d): d is { kind: string } => !!d?.kind);
  t.same(docs.map((d) => d.kind), ['Role', 'RoleBinding'], 'the commented block is a Role and its binding');
  const applied = await kubectl(['apply', '-f', '-'], docs.map((d) => JSON.stringify(d)).join('\n'));
  t.equal(applied.code, 0, applied.stderr);

  let out = '';
  await eventually('doctor sees the token role', async () => {
    out = (await doctor()).stdout;
    return /^FAIL\s+least privilege/m.test(out);
  }, 20_000, 500);
  t.match(out, /^FAIL\s+least privilege\s+this node may read the Secrets of namespace default \(every user's workflow token\) although it does not need them \(WORKFLOW_TOKEN is off\)$/m);
  t.match(out, /fix: remove the nnf-env-workflow-tokens RoleBinding/);
  // Only get, only in that namespace: nothing else is flagged.
  t.equal((out.match(/^FAIL\s+least privilege/gm) ?? []).length, 1, out);

  // With WORKFLOW_TOKEN on the role is what it needs: said plainly, not failed.
  const tokenConf = join(sb.root, 'nnf-env-token.conf');
  await writeFile(tokenConf, (await readFile(conf, 'utf8')) + 'WORKFLOW_TOKEN=true\n');
  const on = await runCli(['doctor', '--config', tokenConf, '--flux-dir', fluxDir], { env: baseEnv(sb, { NNF_ENV_CONFIG: undefined }) });
  t.match(on.stdout, /^warn\s+least privilege\s+WORKFLOW_TOKEN is on: this node can read Secrets in namespace default/m);
  t.match(on.stdout, /^ok\s+least privilege\s+no access to Secrets beyond get in default; workflows only in default$/m);
  t.notMatch(on.stdout, /^FAIL\s+least privilege/m);
});
