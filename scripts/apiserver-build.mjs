#!/usr/bin/env node
/**
 * Builds the test API server (test/apiserver: the real kube-apiserver over an embedded etcd)
 * once per source state and caches the binary, so later runs start it at once.
 *
 *   node scripts/apiserver-build.mjs            build if needed, print the binary's path
 *   node scripts/apiserver-build.mjs --pretest  the same, but without Go print one line and
 *                                               exit 0 (under CI=true: exit 1)
 *
 * Cache: ${NNF_ENV_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/nnf-env}/apiserver/<key>/, where key
 * hashes go.mod, go.sum, every .go file of test/apiserver and the Go version: a second run (or
 * a second tap job) finds the binary and does not build. A lock directory keeps two builds of
 * the same key from running at once; the binary appears by rename, complete or not at all.
 * Only the test suite needs Go: the product itself is TypeScript.
 *
 * Exit codes: 0 built or cached, 1 build failed, 3 Go missing or too old.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'apiserver');
export const BINARY_NAME = 'nnf-env-test-apiserver';
/** go.mod says go 1.26.0; older Go cannot build k8s.io/kubernetes v1.37. */
const MIN_GO = [1, 26];
const LOCK_STALE_MS = 60 * 60 * 1000;
const WAIT_FOR_OTHER_BUILD_MS = 45 * 60 * 1000;

export class GoMissingError extends Error {
  constructor(message) {
    super(message);
    this.name = 'GoMissingError';
    this.code = 'GO_MISSING';
  }
}

function cacheRoot() {
  if (process.env.NNF_ENV_CACHE_DIR) return resolve(process.env.NNF_ENV_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(xdg, 'nnf-env');
}

/** The go command and its version, or a GoMissingError that says what is missing. */
export function findGo() {
  const go = process.env.NNF_ENV_GO || 'go';
  const r = spawnSync(go, ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new GoMissingError(`Go is not installed (${go} not found on PATH); the real kube-apiserver tests need Go >= ${MIN_GO.join('.')}`);
  }
  const version = r.stdout.trim();
  const m = /^go(\d+)\.(\d+)/.exec(version);
  if (!m || Number(m[1]) < MIN_GO[0] || (Number(m[1]) === MIN_GO[0] && Number(m[2]) < MIN_GO[1])) {
    throw new GoMissingError(`${go} is ${version}; the real kube-apiserver tests need Go >= ${MIN_GO.join('.')}`);
  }
  return { go, version };
}

/** The cache key: the build inputs and the Go version. */
export function sourceKey(goVersion) {
  const h = createHash('sha256');
  h.update(`${goVersion}\n`);
  const files = readdirSync(SOURCE_DIR)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
    .sort();
  for (const f of files) {
    h.update(`${f}\n`);
    h.update(readFileSync(join(SOURCE_DIR, f)));
  }
  return h.digest('hex').slice(0, 16);
}

/** The kubernetes release go.mod pins, for the server's /version. */
function kubernetesVersion() {
  const m = /^\s*k8s\.io\/kubernetes\s+(v\d+\.\d+\.\d+)/m.exec(readFileSync(join(SOURCE_DIR, 'go.mod'), 'utf8'));
  return m ? m[1] : undefined;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Take the lock directory, or answer false when a live build holds it. */
function tryLock(lockDir) {
  try {
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, 'pid'), String(process.pid));
    return true;
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
  let holder = NaN;
  try {
    holder = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
  } catch {
    // the holder has not written its pid yet
  }
  let age = 0;
  try {
    age = Date.now() - statSync(lockDir).mtimeMs;
  } catch {
    return false;
  }
  const stale = Number.isInteger(holder) ? !pidAlive(holder) : age > 60_000;
  if (stale || age > LOCK_STALE_MS) {
    rmSync(lockDir, { recursive: true, force: true });
    return tryLock(lockDir);
  }
  return false;
}

function run(cmd, args, opts) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolvePromise() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}`))));
  });
}

/**
 * The path of the built binary; builds it first when this source state has none.
 * `log` receives progress lines (default: stderr).
 */
export async function ensureApiserverBinary({ log = (s) => process.stderr.write(`${s}\n`) } = {}) {
  const { go, version } = findGo();
  const dir = join(cacheRoot(), 'apiserver', sourceKey(version));
  const binary = join(dir, BINARY_NAME);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const lockDir = `${dir}.lock`;
  const deadline = Date.now() + WAIT_FOR_OTHER_BUILD_MS;
  while (!tryLock(lockDir)) {
    if (existsSync(binary)) return binary;
    if (Date.now() > deadline) throw new Error(`another build of the test API server (lock ${lockDir}) did not finish in ${WAIT_FOR_OTHER_BUILD_MS / 60000} min`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  try {
    if (existsSync(binary)) return binary;
    const started = Date.now();
    log(`building the test API server (k8s.io/kubernetes ${kubernetesVersion() ?? '?'}, ${version}) into ${dir}; the first build downloads the Kubernetes modules and takes several minutes`);
    const tmp = join(dir, `.${BINARY_NAME}.${process.pid}`);
    const kv = kubernetesVersion();
    const ldflags = ['-s', '-w'];
    if (kv) {
      const [, major, minor] = /^v(\d+)\.(\d+)/.exec(kv);
      for (const [k, v] of [['gitVersion', kv], ['gitMajor', major], ['gitMinor', minor], ['gitTreeState', 'clean']]) ldflags.push(`-X k8s.io/component-base/version.${k}=${v}`);
    }
    const goArgs = ['build', '-trimpath', '-mod=readonly', `-ldflags=${ldflags.join(' ')}`, '-o', tmp, '.'];
    const env = { ...process.env, GOFLAGS: [process.env.GOFLAGS, '-modcacherw'].filter(Boolean).join(' ') };
    // nice: the build is long and the machine is shared; running tests keep their CPU.
    if (spawnSync('nice', ['true']).status === 0) await run('nice', ['-n', '10', go, ...goArgs], { cwd: SOURCE_DIR, env });
    else await run(go, goArgs, { cwd: SOURCE_DIR, env });
    renameSync(tmp, binary);
    log(`built the test API server in ${((Date.now() - started) / 1000).toFixed(0)} s: ${binary}`);
    return binary;
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

async function main() {
  const pretest = process.argv.includes('--pretest');
  try {
    const binary = await ensureApiserverBinary();
    if (!pretest) process.stdout.write(`${binary}\n`);
  } catch (err) {
    if (err instanceof GoMissingError) {
      if (pretest && process.env.CI !== 'true') {
        process.stdout.write(`real kube-apiserver tests skipped: ${err.message}\n`);
        return;
      }
      process.stderr.write(`${err.message}${process.env.CI === 'true' ? ' (CI=true: the real-server tests must run)' : ''}\n`);
      process.exitCode = 3;
      return;
    }
    process.stderr.write(`the test API server did not build: ${err.message}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
