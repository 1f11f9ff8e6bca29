/**
 * `nnf-env status`, `hosts` and `doctor` through the built CLI: a stand-in daemon on a unix
 * socket, real hosts files and the resolver, the simulator as API server, and a small scripted
 * API server for the SelfSubjectAccessReview path.
 */
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { lookup } from 'node:dns/promises';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { HOSTS_BEGIN_MARKER, HOSTS_END_MARKER } from '../../src/domain/hosts-block.js';
import { fixture } from '../helpers/paths.js';
import { baseEnv, makeSandbox, runCli, statusFor, type Sandbox } from './job-files.js';
import { reply, startStandIn } from './stand-in-daemon.js';

let sb: Sandbox;
let socketPath: string;
t.before(async () => {
  sb = await makeSandbox();
  socketPath = join(sb.runtimeDir, 'nnf-envd.sock');
});
t.teardown(async () => {
  await sb.cleanup();
});

const block = (address: string, names: string) => `${HOSTS_BEGIN_MARKER}\n${address}\t${names}\n${HOSTS_END_MARKER}\n`;

async function writeConf(name: string, lines: Record<string, string>): Promise<string> {
  const path = join(sb.root, name);
  await writeFile(path, Object.entries({ RUNTIME_DIR: sb.runtimeDir, ...lines }).map(([k, v]) => `${k}=${v}\n`).join(''));
  return path;
}

const DAEMON_STATUS = {
  version: '0.1.0',
  pid: 4242,
  startedAt: '2026-01-01T00:00:00.000Z',
  ready: true,
  node: 'compute-01',
  rabbit: { name: 'rabbit-node-1', source: 'systemconfiguration', reason: null, address: '10.0.0.1', addressSource: 'node', addressReason: null, nodesForbidden: false },
  hosts: { path: '/etc/hosts', entry: { address: '10.0.0.1', names: ['local-rabbit'] }, conflicts: [{ line: 3, text: '10.9.9.9 local-rabbit', name: 'local-rabbit', address: '10.9.9.9' }], warnings: [], method: 'rename', error: null, updatedAt: '2026-01-01T00:00:01.000Z' },
  localRabbitConf: { path: '/etc/local-rabbit.conf', written: true, error: null },
  connection: { state: 'ok', server: 'https://10.0.0.100:6443', since: '2026-01-01T00:00:00.500Z', error: null, source: 'explicit settings', dwsVersion: 'v1alpha7' },
  watches: { live: 3, relists: 1 },
  jobs: { total: 2, byPhase: { waiting: 0, delivered: 1, failed: 1 } },
  somethingNew: { a: 1 },
};

t.test('status: the daemon\'s view as a table and as JSON', async (t) => {
  const jobs = [
    statusFor(1234n, {
      variables: ['A', 'B'],
      ports: { target: 'rabbit-node-1', address: '10.0.0.1', results: [
        { port: 4000, reachable: true, attempts: 1, timeToFirstSuccessMs: 2, lastError: null },
        { port: 4001, reachable: false, attempts: 5, timeToFirstSuccessMs: null, lastError: 'ECONNREFUSED' },
      ] },
    }),
    statusFor(1235n, { phase: 'failed', error: { code: 'WORKFLOW_ERROR', message: 'no space' } }),
  ];
  const d = await startStandIn(socketPath, (req, res) => {
    if (req.url === '/v1/status') return reply(res, 200, DAEMON_STATUS);
    if (req.url === '/v1/jobs') return reply(res, 200, { jobs });
    reply(res, 404, { error: { code: 'NOT_FOUND', message: req.url } });
  });
  t.teardown(() => d.close());
  const env = baseEnv(sb);
  const r = await runCli(['status'], { env });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^node\s+compute-01 \(nnf-envd 0\.1\.0, pid 4242, ready, since 2026-01-01T00:00:00\.000Z\)$/m);
  t.match(r.stdout, /^rabbit\s+rabbit-node-1 \(from systemconfiguration\)$/m);
  t.match(r.stdout, /^address\s+10\.0\.0\.1 \(from node\)$/m);
  t.match(r.stdout, /^hosts\s+\/etc\/hosts: 10\.0\.0\.1 local-rabbit \(written by rename at 2026-01-01T00:00:01\.000Z\)$/m);
  t.match(r.stdout, /^hosts conflict\s+line 3 maps local-rabbit to 10\.9\.9\.9: 10\.9\.9\.9 local-rabbit$/m);
  t.match(r.stdout, /^connection\s+ok https:\/\/10\.0\.0\.100:6443 since .* \(explicit settings, DWS v1alpha7\)$/m);
  t.match(r.stdout, /^jobs\s+2 \(delivered 1, failed 1\)$/m);
  t.match(r.stdout, /^somethingNew\s+\{"a":1\}$/m, 'unknown keys are shown, not dropped');
  t.match(r.stdout, /^JOB\s+USER\s+PHASE\s+WORKFLOW\s+VARS\s+PORTS\s+ERROR$/m);
  t.match(r.stdout, /^fNH\s+1050\s+delivered\s+default\/fluxjob-1234 \(PreRun\)\s+2\s+1\/2 UNREACHABLE 1$/m);
  t.match(r.stdout, /^fNJ\s+1050\s+failed\s+.*WORKFLOW_ERROR: no space$/m);

  const j = await runCli(['status', '--json'], { env });
  t.same(JSON.parse(j.stdout), { status: DAEMON_STATUS, jobs });

  await d.close();
  const down = await runCli(['status'], { env });
  t.equal(down.code, 1);
  t.match(down.stderr, /nnf-envd is not running \(socket .*nnf-envd\.sock\) \(systemctl status nnf-envd\)/);
});

t.test('hosts: the managed block and whether it resolves', async (t) => {
  const hostsFile = join(sb.root, 'hosts');
  // `localhost` resolves through the real /etc/hosts; the block claims whatever it resolves to.
  const localhostAddr = (await lookup('localhost', { verbatim: true })).address;
  await writeFile(hostsFile, `# admin lines stay\n${block(localhostAddr, 'localhost')}`);
  const conf = await writeConf('hosts.conf', { HOSTS_FILE: hostsFile, HOSTS_ALIASES: 'localhost' });
  const ok = await runCli(['hosts', '--config', conf], { env: baseEnv(sb) });
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, new RegExp(`^entry\\s+${localhostAddr.replace(/\./g, '\\.')}\\s+localhost$`, 'm'));
  t.match(ok.stdout, /^ok\s+localhost -> /m);

  // an alias that does not resolve (this is not the resolver's hosts file)
  await writeFile(hostsFile, block('10.0.0.1', 'nnf-env-test-alias.invalid'));
  const conf2 = await writeConf('hosts2.conf', { HOSTS_FILE: hostsFile, HOSTS_ALIASES: 'nnf-env-test-alias.invalid' });
  const bad = await runCli(['hosts', '--config', conf2], { env: baseEnv(sb) });
  t.equal(bad.code, 1);
  t.match(bad.stdout, /FAIL\s+nnf-env-test-alias\.invalid -> -\s+\(nnf-env-test-alias\.invalid does not resolve \(ENOTFOUND\): is .*hosts the resolver's hosts file\?\)/);
  const json = JSON.parse((await runCli(['hosts', '--config', conf2, '--json'], { env: baseEnv(sb) })).stdout);
  t.same(json.entry, { address: '10.0.0.1', names: ['nnf-env-test-alias.invalid'] });

  // a line outside the block that maps our name is reported
  await writeFile(hostsFile, `10.9.9.9 localhost\n${block(localhostAddr, 'localhost')}`);
  const conflict = await runCli(['hosts', '--config', conf], { env: baseEnv(sb) });
  t.equal(conflict.code, 1);
  t.match(conflict.stdout, /hosts:1 maps localhost to 10\.9\.9\.9 outside the managed block/);

  // no block
  await writeFile(hostsFile, '127.0.0.1 localhost\n');
  const none = await runCli(['hosts', '--config', conf], { env: baseEnv(sb) });
  t.equal(none.code, 1);
  t.match(none.stdout, /^entry\s+none$/m);
  t.match(none.stdout, /has no nnf-env managed block/);

  // not managed at all
  const conf3 = await writeConf('hosts3.conf', { HOSTS_FILE: '' });
  const off = await runCli(['hosts', '--config', conf3], { env: baseEnv(sb) });
  t.equal(off.code, 0);
  t.equal(off.stdout, 'no hosts entry is managed (HOSTS_FILE is empty)\n');
});

/**
 * A stand-in `flux` on PATH that answers as flux-core 0.88 prints: one answer file per command
 * line (missing: exit 1 with flux-config's "is not set" message). Answers written from
 * flux-jobtap(1) (`list`: one plugin per line, builtins hidden), flux-config(1) (`get` prints
 * JSON for tables and arrays, true/false with --type=boolean) and flux-getattr(1).
 */
const fluxBin = (): string => join(sb.root, 'flux-bin');
const fluxAnswers = (): string => join(sb.root, 'flux-answers');
async function standInFlux(answers: Record<string, string>): Promise<void> {
  await mkdir(fluxBin(), { recursive: true });
  await writeFile(join(fluxBin(), 'flux'), [
    '#!/bin/sh',
    `f="${fluxAnswers()}/$(printf '%s' "$*" | tr -c 'A-Za-z0-9.-' '_')"`,
    '[ -f "$f" ] && exec cat "$f"',
    'echo "flux-config: $* is not set" >&2',
    'exit 1',
    '',
  ].join('\n'), { mode: 0o755 });
  await rm(fluxAnswers(), { recursive: true, force: true });
  await mkdir(fluxAnswers(), { recursive: true });
  for (const [args, out] of Object.entries(answers)) await writeFile(join(fluxAnswers(), args.replace(/[^A-Za-z0-9.-]/g, '_')), out + '\n');
}

/** A live instance as a Rabbit site has it: flux-coral2's plugin and perilog.so, per-rank. */
function healthyFlux(over: Record<string, string | null> = {}): Record<string, string> {
  const answers: Record<string, string | null> = {
    'getattr conf.shell_initrc': join(sb.root, 'flux-shell', 'initrc.lua'),
    'config builtin confdir': join(sb.root, 'flux-confdir'),
    'getattr config.path': join(sb.root, 'flux-conf.d'),
    'jobtap list': 'dws-jobtap.so\nperilog.so',
    'config get job-manager.plugins': '[{"load":"dws-jobtap.so"},{"load":"perilog.so"}]',
    'config get --type=boolean job-manager.prolog.per-rank': 'true',
    'config get --type=boolean job-manager.epilog.per-rank': 'true',
    ...over,
  };
  return Object.fromEntries(Object.entries(answers).filter((e): e is [string, string] => e[1] !== null));
}

/** Everything in place: a healthy node, so that each failure below is the one we caused. */
async function healthyNode(t: Test, sim: Simulator): Promise<{ conf: Record<string, string>; fluxDir: string }> {
  const kubeconfig = join(sb.root, 'kubeconfig');
  await sim.writeKubeconfig(kubeconfig);
  const hostsFile = join(sb.root, 'doctor-hosts');
  const localhostAddr = (await lookup('localhost', { verbatim: true })).address;
  await writeFile(hostsFile, block(localhostAddr, 'localhost'));
  const fluxDir = join(sb.root, 'flux');
  await mkdir(join(sb.root, 'flux-shell', 'lua.d'), { recursive: true });
  await writeFile(join(sb.root, 'flux-shell', 'lua.d', 'nnf-env.lua'), '-- plugin\n');
  await mkdir(join(sb.root, 'flux-conf.d'), { recursive: true });
  await writeFile(join(sb.root, 'flux-conf.d', 'job-manager.toml'), '[job-manager]\nplugins = [\n  { load = "dws-jobtap.so" },\n  { load = "perilog.so" },\n]\n');
  // The scripts as install writes them: the bin and the shared functions by absolute path.
  const installed = join(sb.root, 'installed');
  await mkdir(installed, { recursive: true });
  await writeFile(join(installed, 'nnf-env'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(installed, 'perilog-lib.sh'), ':\n');
  for (const d of ['prolog.d', 'epilog.d']) {
    await mkdir(join(fluxDir, d), { recursive: true });
    await writeFile(join(fluxDir, d, 'nnf-env'), `#!/bin/sh\nNNF_ENV=${join(installed, 'nnf-env')}\nPERILOG_LIB=${join(installed, 'perilog-lib.sh')}\n`);
    await chmod(join(fluxDir, d, 'nnf-env'), 0o755);
  }
  await chmod(sb.jobsDir, 0o711);
  await standInFlux(healthyFlux());
  const d = await startStandIn(socketPath, (_req, res) => reply(res, 200, { ok: true }));
  t.teardown(() => d.close());
  return {
    conf: { NODE_NAME: 'compute-01', KUBECONFIG: kubeconfig, KUBE_CONNECTION: 'kubeconfig', HOSTS_FILE: hostsFile, HOSTS_ALIASES: 'localhost', RABBIT_MAPPING_FILE: join(sb.root, 'no-mapping') },
    fluxDir,
  };
}

t.test('doctor against the simulator', async (t) => {
  const sim = await startSimulator({ computeName: 'compute-01', rabbitName: 'rabbit-node-1', rabbitAddress: '127.0.0.1', controllers: false, userContainers: false });
  t.teardown(() => sim.close());
  const { conf, fluxDir } = await healthyNode(t, sim);
  const doctor = async (name: string, over: Record<string, string>, extra: string[] = []) =>
    runCli(['doctor', '--config', await writeConf(name, { ...conf, ...over }), '--flux-dir', fluxDir, ...extra], { env: baseEnv(sb, { NNF_ENV_CONFIG: undefined, PATH: `${fluxBin()}:/usr/bin:/bin` }) });

  const ok = await doctor('d1.conf', {});
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  for (const line of [
    /^ok\s+config\s+.*d1\.conf; node compute-01$/m,
    /^ok\s+connection\s+http:\/\/127\.0\.0\.1:\d+ \(kubeconfig /m,
    /^warn\s+connection\s+the API server .* plain HTTP/m,
    /^ok\s+api\s+reachable and authenticated; DWS v1alpha7$/m,
    /^ok\s+permissions\s+list workflows\.dataworkflowservices\.github\.io in namespace default \(tried; the server does not serve SelfSubjectAccessReview/m,
    /^ok\s+permissions\s+list nodes/m,
    /^ok\s+rabbit\s+rabbit-node-1 \(SystemConfiguration default\/default\)$/m,
    /^ok\s+rabbit address\s+127\.0\.0\.1 \(Node rabbit-node-1\)$/m,
    /^ok\s+hosts\s+/m,
    /^ok\s+socket\s+nnf-envd is serving on /m,
    /^ok\s+jobs dir\s+.* \(mode 711\)$/m,
    /^ok\s+flux\s+/m,
    /^ok\s+flux shell\s+.*flux-shell\/lua\.d\/nnf-env\.lua is in place \(flux getattr conf\.shell_initrc: /m,
    /^ok\s+flux jobtap\s+perilog\.so loaded, with dws-jobtap\.so$/m,
    /^ok\s+flux prolog\s+\[job-manager\.prolog\] per-rank = true$/m,
    /^ok\s+flux epilog\s+\[job-manager\.epilog\] per-rank = true$/m,
    /^skip\s+least privilege\s+the server does not serve SelfSubjectAccessReview/m,
    /^all checks passed \(1 warning\)$/m,
  ]) t.match(ok.stdout, line);

  // A partial install: the scripts name a lib that is not there (every #DW job would start Node).
  await rename(join(sb.root, 'installed', 'perilog-lib.sh'), join(sb.root, 'installed', 'perilog-lib.sh.gone'));
  const noLib = await doctor('d1l.conf', {});
  await rename(join(sb.root, 'installed', 'perilog-lib.sh.gone'), join(sb.root, 'installed', 'perilog-lib.sh'));
  t.match(noLib.stdout, new RegExp(`^warn\\s+flux\\s+.*name files that are not there: ${join(sb.root, 'installed', 'perilog-lib.sh')} \\(PERILOG_LIB\\)$`, 'm'));

  // WORKFLOW_TOKEN on: said plainly (a warning, not a failure).
  const tokens = await doctor('d1t.conf', { WORKFLOW_TOKEN: 'true' });
  t.equal(tokens.code, 0, tokens.stdout);
  t.match(tokens.stdout, /^warn\s+least privilege\s+WORKFLOW_TOKEN is on: this node can read Secrets in namespace default/m);
  t.match(tokens.stdout, /^ok\s+permissions\s+list secrets in namespace default/m);

  // flux mode: no Kubernetes needed; credentials lying around are flagged.
  const flux = await doctor('d1f.conf', { ENV_SOURCE: 'flux' });
  t.match(flux.stdout, /^warn\s+connection\s+ENV_SOURCE=flux needs no Kubernetes access, yet credentials are configured here/m);
  t.match(flux.stdout, /^skip\s+api\s+ENV_SOURCE=flux/m);
  t.match(flux.stdout, /^skip\s+permissions\s+ENV_SOURCE=flux: no Kubernetes permissions needed/m);
  const fluxBare = await doctor('d1g.conf', { ENV_SOURCE: 'flux', KUBE_CONNECTION: 'kubeconfig', KUBECONFIG: join(sb.root, 'no-such-kubeconfig'), RABBIT_NAME: 'rabbit-node-1', RABBIT_ADDRESS: '127.0.0.1' });
  t.equal(fluxBare.code, 0, fluxBare.stdout);
  t.match(fluxBare.stdout, /^ok\s+connection\s+ENV_SOURCE=flux: no Kubernetes credentials on this node, none needed$/m);

  // Issue 11: what a real instance showed. A second conf.d file with its own plugins array
  // (the array of the file read last wins), perilog.so not loaded, per-rank unset.
  await writeFile(join(sb.root, 'flux-conf.d', 'nnf-env-perilog.toml'), '[job-manager]\nplugins = [ { load = "perilog.so" } ]\n');
  await standInFlux(healthyFlux({
    'jobtap list': 'dws-jobtap.so',
    'config get job-manager.plugins': '[{"load":"perilog.so"}]',
    'config get --type=boolean job-manager.prolog.per-rank': null,
    'config get --type=boolean job-manager.epilog.per-rank': 'false',
  }));
  const clobbered = await doctor('d1b.conf', {});
  t.equal(clobbered.code, 1);
  t.match(clobbered.stdout, /^FAIL\s+flux jobtap\s+perilog\.so is not loaded \(flux jobtap list: dws-jobtap\.so\)/m);
  t.match(clobbered.stdout, /^FAIL\s+flux jobtap\s+configured but not loaded: perilog\.so$/m);
  t.match(clobbered.stdout, /^FAIL\s+flux config\s+2 files set \[job-manager\] plugins \(.*job-manager\.toml, .*nnf-env-perilog\.toml\): Flux replaces the array, only .*nnf-env-perilog\.toml counts$/m);
  t.match(clobbered.stdout, /^FAIL\s+flux prolog\s+\[job-manager\.prolog\] per-rank is not set: perilog runs the prolog on broker rank 0 only/m);
  t.match(clobbered.stdout, /^FAIL\s+flux epilog\s+\[job-manager\.epilog\] per-rank is false/m);
  // After `flux config reload` the plugin stays loaded, but the config in use lost it.
  await standInFlux(healthyFlux({ 'config get job-manager.plugins': '[{"load":"dws-jobtap.so"}]' }));
  t.match((await doctor('d1c.conf', {})).stdout, /^FAIL\s+flux jobtap\s+perilog\.so is loaded but not in the config in use \(job-manager\.plugins: dws-jobtap\.so\): the next restart runs no prolog/m);
  // No instance to ask: said, not guessed.
  await rm(join(sb.root, 'flux-conf.d', 'nnf-env-perilog.toml'));
  await standInFlux(healthyFlux({ 'jobtap list': null }));
  t.match((await doctor('d1d.conf', {})).stdout, /^warn\s+flux jobtap\s+could not ask the instance \(flux jobtap list failed\)/m);
  // --no-imp (or the scripts run directly) while the instance has an IMP: the scripts would run as the owner.
  await standInFlux(healthyFlux({
    'config get exec.imp': '"/usr/libexec/flux/flux-imp"',
    'config get job-manager.prolog.command': '["/usr/local/libexec/nnf-env/flux-perilog","prolog","--no-imp"]',
    'config get job-manager.epilog.command': '["/etc/flux/system/epilog.d/nnf-env"]',
  }));
  const noImp = (await doctor('d1e.conf', {})).stdout;
  t.match(noImp, /^warn\s+flux prolog\s+\[job-manager\.prolog\] command .* has --no-imp although exec\.imp is set \(\/usr\/libexec\/flux\/flux-imp\)/m);
  t.match(noImp, /^warn\s+flux epilog\s+\[job-manager\.epilog\] command .* runs the script itself although exec\.imp is set/m);
  await standInFlux(healthyFlux({ 'config get job-manager.prolog.command': '["/usr/local/libexec/nnf-env/flux-perilog","prolog","--no-imp"]' }));
  t.notMatch((await doctor('d1f.conf', {})).stdout, /has --no-imp/, 'no IMP: --no-imp is right');
  await standInFlux(healthyFlux());

  // This node is not in the SystemConfiguration, and no mapping file: fail, with the fix.
  const lost = await doctor('d2.conf', { NODE_NAME: 'compute-99' });
  t.equal(lost.code, 1);
  t.match(lost.stdout, /^FAIL\s+rabbit\s+no rabbit found for node compute-99: compute-99 is not listed in any rabbit's computesAccess/m);
  t.match(lost.stdout, /fix: set NODE_NAME to the name DWS uses for this compute node, or RABBIT_NAME/);

  // ...but the flux rabbitmapping file knows it.
  const mapping = join(sb.root, 'rabbitmapping');
  await writeFile(mapping, await readFile(fixture('rabbitmapping.json'), 'utf8'));
  const mapped = JSON.parse(await readFile(mapping, 'utf8')) as { computes: Record<string, string> };
  // a compute the simulator's SystemConfiguration does not list
  const [someCompute, itsRabbit] = Object.entries(mapped.computes).find(([c]) => c !== 'compute-01')!;
  const viaMap = await doctor('d3.conf', { NODE_NAME: someCompute, RABBIT_MAPPING_FILE: mapping, RABBIT_ADDRESS: '10.1.1.1' });
  t.match(viaMap.stdout, new RegExp(`^ok\\s+rabbit\\s+${itsRabbit} \\(${mapping.replace(/[/.]/g, '\\$&')}\\)$`, 'm'));

  // The API server is down.
  const down = await doctor('d4.conf', { KUBE_CONNECTION: 'explicit', KUBE_SERVER: 'http://127.0.0.1:1', KUBECONFIG: '' });
  t.equal(down.code, 1);
  t.match(down.stdout, /^FAIL\s+api\s+connection refused/m);
  t.match(down.stdout, /^skip\s+permissions/m);

  // No daemon, wrong jobs dir mode, no Flux scripts.
  await chmod(sb.jobsDir, 0o755);
  const noDaemon = await runCli(['doctor', '--config', await writeConf('d5.conf', { ...conf, RUNTIME_DIR: join(sb.root, 'elsewhere') }), '--flux-dir', join(sb.root, 'nowhere')], { env: baseEnv(sb, { NNF_ENV_RUNTIME_DIR: undefined }) });
  t.equal(noDaemon.code, 1);
  t.match(noDaemon.stdout, /^FAIL\s+socket\s+nnf-envd is not running/m);
  t.match(noDaemon.stdout, /fix: systemctl enable --now nnf-envd/);
  t.match(noDaemon.stdout, /^FAIL\s+jobs dir/m);
  t.match(noDaemon.stdout, /^warn\s+flux\s+missing or not executable/m);
  await chmod(sb.jobsDir, 0o711);

  // A broken config file stops at the first check.
  const badConf = join(sb.root, 'bad.conf');
  await writeFile(badConf, 'PROBE_DEADLINE=soon\n');
  const bad = await runCli(['doctor', '--config', badConf], { env: baseEnv(sb) });
  t.equal(bad.code, 1);
  t.match(bad.stdout, /^FAIL\s+config\s+PROBE_DEADLINE=soon/m);
  t.equal(bad.stdout.split('\n').filter((l) => /^(ok|FAIL|warn|skip) /.test(l)).length, 1);
});

t.test('doctor: authentication failure', async (t) => {
  const sim = await startSimulator({ computeName: 'compute-01', rabbitName: 'rabbit-node-1', token: 'right-token', controllers: false, userContainers: false });
  t.teardown(() => sim.close());
  const tokenFile = join(sb.root, 'token');
  await writeFile(tokenFile, 'wrong-token\n');
  const conf = await writeConf('auth.conf', { KUBE_CONNECTION: 'explicit', KUBE_SERVER: sim.url, KUBE_TOKEN_FILE: tokenFile, NODE_NAME: 'compute-01' });
  const r = await runCli(['doctor', '--config', conf, '--flux-dir', sb.root], { env: baseEnv(sb) });
  t.equal(r.code, 1);
  t.match(r.stdout, /^FAIL\s+api\s+authentication failed: /m);
  t.match(r.stdout, /fix: /);
});

t.test('doctor: SelfSubjectAccessReview says what is missing', async (t) => {
  const sc = parseYaml(await readFile(fixture('systemconfiguration.yaml'), 'utf8'));
  const reviews: Array<{ resource: string; verb: string; namespace?: string }> = [];
  // A scripted API server: discovery, SSAR (nodes and watch on computes denied), the
  // SystemConfiguration, and 403 on reading nodes.
  const api = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const json = (status: number, obj: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      const url = req.url ?? '';
      if (url === '/apis/dataworkflowservices.github.io') {
        return json(200, { kind: 'APIGroup', name: 'dataworkflowservices.github.io', versions: [{ groupVersion: 'dataworkflowservices.github.io/v1alpha7', version: 'v1alpha7' }], preferredVersion: { version: 'v1alpha7' } });
      }
      if (req.method === 'POST' && url === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
        const attrs = JSON.parse(body).spec.resourceAttributes;
        reviews.push({ resource: attrs.resource, verb: attrs.verb, namespace: attrs.namespace });
        const allowed = attrs.resource !== 'nodes' && !(attrs.resource === 'computes' && attrs.verb === 'watch');
        return json(201, { kind: 'SelfSubjectAccessReview', status: { allowed } });
      }
      if (url === '/apis/dataworkflowservices.github.io/v1alpha7/namespaces/default/systemconfigurations/default') return json(200, sc);
      if (url.startsWith('/api/v1/nodes/')) return json(403, { kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, message: 'nodes is forbidden' });
      json(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: url });
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => api.close(() => r())));
  const port = (api.address() as { port: number }).port;
  const conf = await writeConf('ssar.conf', {
    KUBE_CONNECTION: 'explicit', KUBE_SERVER: `http://127.0.0.1:${port}`, NODE_NAME: 'compute-01', WORKFLOW_NAMESPACE: 'jobs', HOSTS_FILE: '',
  });
  const r = await runCli(['doctor', '--config', conf, '--flux-dir', sb.root], { env: baseEnv(sb) });
  t.equal(r.code, 1, r.stdout + r.stderr);
  t.match(r.stdout, /^ok\s+permissions\s+get, list, watch workflows\.dataworkflowservices\.github\.io in namespace jobs$/m);
  t.match(r.stdout, /^FAIL\s+permissions\s+watch on computes\.dataworkflowservices\.github\.io in namespace jobs is not allowed: needed for /m);
  t.match(r.stdout, /fix: grant the identity of explicit settings.* get, list, watch on computes\.dataworkflowservices\.github\.io in namespace jobs/);
  t.match(r.stdout, /^ok\s+permissions\s+get, list, watch systemconfigurations\.dataworkflowservices\.github\.io in namespace default$/m);
  t.match(r.stdout, /^warn\s+permissions\s+get, list, watch on nodes is not allowed: optional, for the rabbit's address/m);
  // This server allows everything else, Secrets too: more than nnf-envd needs (WORKFLOW_TOKEN is off).
  t.notMatch(r.stdout, /permissions\s+get secrets/, 'no Secret is needed');
  t.match(r.stdout, /^FAIL\s+least privilege\s+this node may read the Secrets of namespace jobs \(every user's workflow token\) although it does not need them \(WORKFLOW_TOKEN is off\)$/m);
  t.match(r.stdout, /^FAIL\s+least privilege\s+this node may read Secrets in every namespace/m);
  t.match(r.stdout, /^FAIL\s+least privilege\s+this node may list the Secrets of namespace jobs/m);
  t.match(r.stdout, /^warn\s+least privilege\s+this node may list workflows in every namespace; nnf-envd reads only namespace jobs \(WORKFLOW_NAMESPACE\)$/m);
  t.ok(reviews.some((x) => x.resource === 'secrets' && x.verb === 'get' && x.namespace === undefined), 'asked about every namespace');
  t.match(r.stdout, /^ok\s+rabbit\s+rabbit-node-1 \(SystemConfiguration default\/default\)$/m);
  t.match(r.stdout, /^(warn|FAIL)\s+rabbit address\s+.*reading nodes is forbidden/m);
  t.ok(reviews.some((x) => x.resource === 'workflows' && x.verb === 'watch' && x.namespace === 'jobs'));
  t.ok(reviews.some((x) => x.resource === 'nodes' && x.namespace === undefined), 'nodes are cluster-scoped');
});
