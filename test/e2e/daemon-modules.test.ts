/**
 * What a running nnf-envd has loaded (issue 13: memory): with ENV_SOURCE=flux the daemon needs
 * no Kubernetes, so it must never load undici, TLS or the Kubernetes client; with the kube
 * source it does (the control case: the check can fail). A real daemon process, the shipped
 * standalone bundle and the ES module build, serving its socket; a preload (--require) writes
 * `process.moduleLoadList` (Node's built-ins) and `require.cache` (npm packages, ES module
 * build) to a file when the test sends SIGUSR2.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { health } from '../../src/api/client.js';
import { flagName, type ConfigKey } from '../../src/config/schema.js';
import { startHarness, NODE, type Harness } from '../daemon/harness.js';
import { makeStandInFlux } from '../flux/stand-in.js';
import { buildRoot } from '../helpers/paths.js';
import { eventually } from '../helpers/eventually.js';

const BUNDLE = join(buildRoot, 'standalone', 'nnf-envd.cjs');
const ESM = join(buildRoot, 'src', 'bin', 'nnf-envd.js');

interface Loaded {
  builtins: string[];
  files: string[];
}

const PRELOAD = `process.on('SIGUSR2', () => {
  require('node:fs').writeFileSync(process.env.NNF_TEST_DUMP + '.tmp', JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) }));
  require('node:fs').renameSync(process.env.NNF_TEST_DUMP + '.tmp', process.env.NNF_TEST_DUMP);
});
`;

async function loadedBy(h: Harness, bin: string, extra: Record<string, string>): Promise<Loaded> {
  const preload = join(h.dir, 'dump-modules.cjs');
  await writeFile(preload, PRELOAD);
  const dump = join(h.dir, `modules-${Date.now()}.json`);
  const args = ['--require', preload, bin];
  for (const [k, v] of Object.entries({ ...h.flags, ...extra })) args.push(`${flagName(k as ConfigKey)}=${v}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NNF_TEST_DUMP: dump } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await eventually('nnf-envd serving', async () => {
      if (child.exitCode !== null) throw new Error(`nnf-envd exited ${child.exitCode}: ${stderr}`);
      return health(h.socketPath, { timeoutMs: 1000 }).catch(() => false);
    }, 20_000, 50);
    child.kill('SIGUSR2');
    await eventually('the module list', () => existsSync(dump), 10_000, 20);
    return JSON.parse(await readFile(dump, 'utf8')) as Loaded;
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  }
}

const kubeBuiltins = (l: Loaded) => l.builtins.filter((m) => /^NativeModule (tls|_tls_wrap|https|http2|internal\/deps\/undici\/undici)$/.test(m));
const kubeFiles = (l: Loaded) => l.files.filter((f) => /[/\\]node_modules[/\\](undici|yaml)[/\\]|[/\\]src[/\\]kube[/\\](client|connection|kubeconfig)\.js$/.test(f));

let h: Harness;
let fluxFlags: Record<string, string>;
t.before(async () => {
  h = await startHarness({ noDaemon: true, config: { PROBE_PORTS: 'false', JOBSPEC_CHECK: 'false' } });
  const flux = await makeStandInFlux(h.dir);
  await writeFile(h.flags.RABBIT_MAPPING_FILE!, JSON.stringify({ computes: { [NODE]: 'rabbit-flux-1' }, rabbits: { 'rabbit-flux-1': { hostlist: NODE, capacity: 1 } } }));
  fluxFlags = { ENV_SOURCE: 'flux', FLUX_COMMAND: flux.command, RABBIT_ADDRESS: '127.0.0.1' };
});
t.teardown(() => h.close());

for (const [name, bin] of [['standalone bundle', BUNDLE], ['ES module build', ESM]] as const) {
  t.test(`${name}: ENV_SOURCE=flux loads no undici, TLS or Kubernetes client`, { skip: existsSync(bin) ? false : `${bin} not built` }, async (t) => {
    const flux = await loadedBy(h, bin, fluxFlags);
    t.ok(flux.builtins.includes('NativeModule http'), 'the list is real (the control socket\'s http is in it)');
    t.same(kubeBuiltins(flux), [], 'no tls, https, http2 or undici built-in');
    t.same(kubeFiles(flux), [], 'no undici, yaml or kube client file');
  });
  t.test(`${name}: the kube source does load them (control)`, { skip: existsSync(bin) ? false : `${bin} not built` }, async (t) => {
    const kube = await loadedBy(h, bin, {});
    t.ok(kubeBuiltins(kube).includes('NativeModule tls'), 'tls loaded with undici');
    if (bin === ESM) t.ok(kubeFiles(kube).some((f) => /undici/.test(f)), 'undici loaded from node_modules');
  });
}
