#!/usr/bin/env node
'use strict';
/**
 * The standalone `nnf-env` (/usr/bin/nnf-env; copied by scripts/bundle-cli.mjs): loads the
 * bundle nnf-env-main.cjs (beside it, or ../lib/nnf-env/ when installed) with a V8 code cache,
 * nnf-env-main.cjs.v8cache beside the bundle, so that the prolog on every node of every job
 * does not compile the bundle again (about 5 ms of a ~40 ms `node -e 0`).
 *
 * The cache is written by `NNF_ENV_WRITE_CODE_CACHE=1 nnf-env --version` (npm run build,
 * `nnf-env install`, the packages' post-install, with the node that will run it). V8 checks
 * it against its own version and flags (a cache of another node binary, or damaged, is rejected),
 * the launcher against the bundle's build id; either way the bundle is then compiled as without one.
 * A missing or unreadable cache is the same. Nothing is ever written at run time otherwise.
 */
const { existsSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const Module = require('node:module');
const { Script } = require('node:vm');

const candidates = [join(__dirname, 'nnf-env-main.cjs'), join(__dirname, '..', 'lib', 'nnf-env', 'nnf-env-main.cjs')];
const file = candidates.find((f) => existsSync(f));
if (file === undefined) {
  process.stderr.write(`nnf-env: this command's code is missing: none of ${candidates.join(', ')} exists (hint: reinstall nnf-env)\n`);
  process.exit(70);
}
const cacheFile = `${file}.v8cache`;
let source = readFileSync(file, 'utf8');
if (source.startsWith('#!')) source = `//${source.slice(2)}`; // same length: positions in stack traces stay right
// V8 checks a cache against the source's length only, not its bytes: the cache file starts with
// the build id that scripts/bundle-cli.mjs writes into the bundle (a hash of its content), and a
// cache of another build is not handed to V8 at all.
const build = /^\/\/ nnf-env-build ([0-9a-f]+)$/m.exec(source.slice(0, 400))?.[1] ?? 'unknown';
const header = Buffer.from(`nnf-env-build ${build}\n`);
let cachedData;
let stale = false;
try {
  // NNF_ENV_CODE_CACHE=off: compile as without a cache (the benchmark's A/B, diagnosis).
  const raw = process.env.NNF_ENV_CODE_CACHE === 'off' ? undefined : readFileSync(cacheFile);
  if (raw !== undefined && raw.subarray(0, header.length).equals(header)) cachedData = raw.subarray(header.length);
  else stale = raw !== undefined;
} catch {
  cachedData = undefined; // no cache: compiled as usual
}
const script = new Script(Module.wrap(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
const bundle = new Module(file, module);
bundle.filename = file;
bundle.paths = Module._nodeModulePaths(dirname(file));
if (process.env.NNF_ENV_WRITE_CODE_CACHE === '1') {
  // After the run: the cache then holds the functions this run compiled too.
  process.once('exit', () => {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.concat([header, script.createCachedData()]), { mode: 0o644 });
    renameSync(tmp, cacheFile);
  });
}
if (process.env.NNF_ENV_DEBUG_CODE_CACHE === '1') {
  process.stderr.write(`nnf-env: code cache ${stale ? 'stale' : cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used'} (${cacheFile})\n`);
}
script.runInThisContext().call(bundle.exports, bundle.exports, Module.createRequire(file), bundle, file, dirname(file));
