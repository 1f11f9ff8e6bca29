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
// Release builds of V8 do not verify the cache's checksum either, and damaged data can crash the
// process: the header also holds a hash of the V8 data, checked before V8 sees it.
const build = /^\/\/ nnf-env-build ([0-9a-f]+)$/m.exec(source.slice(0, 400))?.[1] ?? 'unknown';
const prefix = `nnf-env-build ${build} `;
// A cheap checksum (FNV-1a over 32-bit words; node:crypto would cost more than the cache saves).
// It catches damage, not tampering: whoever can write the cache beside the bundle can write the bundle.
function digest(buf) {
  const data = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
  const words = new Int32Array(data.buffer, data.byteOffset, data.length >> 2);
  let h = 0x811c9dc5 ^ data.length;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 0x01000193);
  for (let i = words.length * 4; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}
let cachedData;
let stale = false;
try {
  // NNF_ENV_CODE_CACHE=off: compile as without a cache (the benchmark's A/B, diagnosis).
  const raw = process.env.NNF_ENV_CODE_CACHE === 'off' ? undefined : readFileSync(cacheFile);
  const end = raw === undefined ? -1 : raw.indexOf(10);
  if (end > 0 && raw.toString('latin1', 0, prefix.length) === prefix && raw.toString('latin1', prefix.length, end) === digest(raw.subarray(end + 1))) {
    cachedData = raw.subarray(end + 1);
  } else {
    stale = raw !== undefined;
  }
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
    const data = script.createCachedData();
    writeFileSync(tmp, Buffer.concat([Buffer.from(`${prefix}${digest(data)}\n`, 'latin1'), data]), { mode: 0o644 });
    renameSync(tmp, cacheFile);
  });
}
if (process.env.NNF_ENV_DEBUG_CODE_CACHE === '1') {
  process.stderr.write(`nnf-env: code cache ${stale ? 'not used (another build, or damaged)' : cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used'} (${cacheFile})\n`);
}
script.runInThisContext().call(bundle.exports, bundle.exports, Module.createRequire(file), bundle, file, dirname(file));
