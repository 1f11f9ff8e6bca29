/**
 * The hot commands load only what they use: run through the built CLI with a module resolve
 * hook that records every module loaded, and check that none of the heavy packages is among
 * them (and that the fast path did not even need commander).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatJobId } from '../../src/contract/jobid.js';
import { nnfEnvBin, nnfEnvBundle } from '../helpers/paths.js';
import { baseEnv, makeSandbox, statusFor, writeJob, type Sandbox } from './job-files.js';
import { reply, startStandIn } from './stand-in-daemon.js';

const HEAVY = ['undici', 'pino', 'prom-client', 'ws', 'yaml', 'dotenv'];

let sb: Sandbox;
t.before(async () => {
  sb = await makeSandbox();
});
t.teardown(() => sb.cleanup());

async function loadedModules(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; urls: string[] }> {
  const hook = join(sb.root, 'hook.mjs');
  const log = join(sb.root, `modules-${args[0]}.log`);
  await writeFile(hook, `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`);
  await writeFile(log, '');
  // The bin may be the CommonJS bundle (scripts/bundle-cli.mjs), whose require()s the ESM
  // hook does not see: record those too.
  const cjsHook = join(sb.root, 'hook.cjs');
  await writeFile(cjsHook, `const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const { pathToFileURL } = require('node:url');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const r = resolveFilename.apply(this, args);
  appendFileSync(${JSON.stringify(log)}, (r.startsWith('/') ? pathToFileURL(r).href : 'node:' + r.replace(/^node:/, '')) + '\\n');
  return r;
};
`);
  const register = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hook).href)});`;
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--require', cjsHook, '--import', register, nnfEnvBin, ...args], { env: clean, stdio: 'ignore' });
    child.on('close', resolve);
  });
  return { code, urls: (await readFile(log, 'utf8')).split('\n').filter(Boolean) };
}

function packagesIn(urls: string[]): string[] {
  const names = new Set<string>();
  for (const u of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

t.test('export, get, prolog and epilog load no heavy package, not even commander', async (t) => {
  const id = 1234n;
  await writeJob(sb.jobsDir, id, { vars: { DW_JOB_a: 'x', NNF_CONTAINER_PORTS: '4000' } });
  const d = await startStandIn(join(sb.runtimeDir, 'nnf-envd.sock'), (req, res) => reply(res, 200, statusFor(id)));
  t.teardown(() => d.close());
  // As a job script runs them: RUNTIME_DIR from a config file, nothing in the environment.
  const conf = join(sb.root, 'site.conf');
  await writeFile(conf, `RUNTIME_DIR=${sb.runtimeDir}\n`);
  const env = { ...baseEnv(sb, { NNF_ENV_RUNTIME_DIR: undefined, NNF_ENV_CONFIG: conf }), FLUX_JOB_ID: formatJobId(id, 'f58'), FLUX_JOB_USERID: '1050' };
  for (const args of [['export'], ['get', 'DW_JOB_a'], ['prolog'], ['epilog']]) {
    const { code, urls } = await loadedModules(args, env);
    t.equal(code, 0, `${args[0]} ran`);
    if (nnfEnvBin === nnfEnvBundle) {
      // The command is inside the bundles: the bin's and the command's own
      // (nnf-env-<command>.cjs, scripts/bundle-cli.mjs), and no ES module entry.
      const own = pathToFileURL(join(dirname(nnfEnvBundle), `nnf-env-${args[0]}.cjs`)).href;
      t.ok(urls.includes(pathToFileURL(nnfEnvBundle).href), `${args[0]}: the hook saw the bundle load`);
      t.ok(urls.includes(own), `${args[0]}: and the command's own bundle`);
      t.notOk(urls.some((u) => u.startsWith('file:') && !u.includes('/node_modules/') && u !== pathToFileURL(nnfEnvBundle).href && u !== own),
        `${args[0]}: ran inside the bundles (loaded: ${urls.filter((u) => u.startsWith('file:')).join(', ')})`);
    } else {
      t.ok(urls.some((u) => u.includes('/src/cli/commands/')), `${args[0]}: the hook saw the command load`);
    }
    const pkgs = packagesIn(urls);
    t.same(pkgs.filter((p) => HEAVY.includes(p) || p === 'commander'), [], `${args[0]} loads none of ${HEAVY.join(', ')}, commander (loaded: ${pkgs.join(', ') || 'no package'})`);
    t.notOk(urls.some((u) => u.endsWith('/src/config/load.js')), `${args[0]}: not the full config loader`);
  }
});

t.test('the other job-script commands load no heavy package either', async (t) => {
  const id = 1235n;
  await writeJob(sb.jobsDir, id, { vars: { DW_JOB_a: 'x', NNF_CONTAINER_PORTS: '4000', NNF_ENV_LOCAL_RABBIT_ADDRESS: '127.0.0.1' } });
  const env = { ...baseEnv(sb), FLUX_JOB_ID: formatJobId(id, 'f58') };
  for (const args of [['show'], ['endpoint'], ['wait', '--timeout', '1s'], ['check-ports', '--timeout', '100ms'], ['run', '--', 'true']]) {
    const { urls } = await loadedModules(args, env);
    t.same(packagesIn(urls).filter((p) => HEAVY.includes(p)), [], `${args[0]}`);
  }
});

t.test('the prolog\'s bundle leaves its rare paths out (scripts/bundle-cli.mjs COLD)', { skip: nnfEnvBin === nnfEnvBundle ? false : 'a tsc-only build has no bundles' }, async (t) => {
  // A cold module inlined is parsed by every prolog; a cold module that moved used to be inlined
  // without a word. Its code must stay behind an import() of the compiled ES module.
  const text = await readFile(join(dirname(nnfEnvBundle), 'nnf-env-prolog.cjs'), 'utf8');
  for (const [module, definition] of [['fs/prolog-notice.js', 'function writeDaemonDownNotice('], ['config/load.js', 'function loadConfig(']] as const) {
    t.notOk(text.includes(definition), `${module}: not inlined`);
    t.ok(text.includes(`import("./../${module}")`), `${module}: loaded by import() when needed`);
  }
});
