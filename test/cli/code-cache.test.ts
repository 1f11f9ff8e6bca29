/**
 * The standalone nnf-env's V8 code cache (scripts/nnf-env-launcher.cjs): written on request
 * beside the bundle, used when it fits, and when it does not (damaged, another bundle's, another
 * V8's, empty, unreadable) the command still runs and answers the same. Real processes on a copy of the
 * build's standalone files in a temp dir, the installed layout too (bin/ + lib/nnf-env/).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRoot } from '../helpers/paths.js';

const STANDALONE = join(buildRoot, 'standalone');
const FILES = ['nnf-env.cjs', 'nnf-env-main.cjs', 'nnf-env-commands.cjs'];

/** The launcher's checksum of the V8 data (FNV-1a over 32-bit little-endian words, then the tail bytes). */
function fnv(data: Buffer): string {
  let h = 0x811c9dc5 ^ data.length;
  const n = data.length >> 2;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ data.readInt32LE(i * 4), 0x01000193);
  for (let i = n * 4; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

function run(bin: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NNF_ENV_DEBUG_CODE_CACHE: '1', ...env } });
  const cache = /nnf-env: code cache (used|absent|rejected|not used)/.exec(r.stderr)?.[1];
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, cache };
}

if (!FILES.every((f) => existsSync(join(STANDALONE, f)))) {
  t.test('code cache', { skip: `${STANDALONE} not built (npm run build)` }, () => undefined);
} else {
  const version = run(join(STANDALONE, 'nnf-env.cjs'), ['--version']).stdout;

  t.test('beside the bundle: absent, written on request, used; damaged or stale caches are rejected and the command still runs', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'nnf-env-cc-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    for (const f of FILES) await copyFile(join(STANDALONE, f), join(dir, f));
    const bin = join(dir, 'nnf-env.cjs');
    const cache = join(dir, 'nnf-env-main.cjs.v8cache');

    let r = run(bin, ['--version']);
    t.same([r.status, r.stdout, r.cache], [0, version, 'absent'], 'no cache: compiled as usual');
    r = run(bin, ['--version'], { NNF_ENV_WRITE_CODE_CACHE: '1' });
    t.equal(r.status, 0);
    t.ok(existsSync(cache), 'NNF_ENV_WRITE_CODE_CACHE=1 writes the cache beside the bundle');
    r = run(bin, ['jobid', '--to', 'dec', 'f2']);
    t.same([r.status, r.stdout, r.cache], [0, '1\n', 'used'], 'the cache is used, a cold command still loads from nnf-env-commands.cjs');
    r = run(bin, ['--version'], { NNF_ENV_CODE_CACHE: 'off' });
    t.same([r.status, r.stdout, r.cache], [0, version, 'absent'], 'NNF_ENV_CODE_CACHE=off ignores it');

    const good = await readFile(cache);
    const damaged = Buffer.from(good);
    // The V8 data after the launcher's build-id line.
    for (let i = good.indexOf(10) + 17; i < damaged.length; i += 97) damaged[i] = damaged[i]! ^ 0xff;
    await writeFile(cache, damaged);
    r = run(bin, ['--version']);
    t.same([r.status, r.stdout, r.cache], [0, version, 'not used'], 'a damaged cache is not handed to V8 (its release build checks no checksum and may crash), the command answers the same');

    await writeFile(cache, '');
    r = run(bin, ['--version']);
    t.same([r.status, r.stdout], [0, version], 'an empty cache file: still runs');

    // Another bundle's cache (as after an upgrade that left the old cache): V8 checks only the
    // source's length, so the launcher checks the build id; a bundle of the same length too.
    await writeFile(cache, good);
    const main = join(dir, 'nnf-env-main.cjs');
    const text = await readFile(main, 'utf8');
    await writeFile(main, text.replace(/^\/\/ nnf-env-build ([0-9a-f])/m, (_m, c: string) => `// nnf-env-build ${c === '0' ? '1' : '0'}`));
    t.equal((await readFile(main, 'utf8')).length, text.length, 'same length');
    r = run(bin, ['--version']);
    t.same([r.status, r.stdout, r.cache], [0, version, 'not used'], 'a cache of another build is not used');
    await appendFile(main, '\n// another build\n');
    r = run(bin, ['--version']);
    t.same([r.status, r.stdout, r.cache], [0, version, 'not used'], 'nor for a longer bundle');
    // The right build and hash, V8 data of another V8 (its version field changed): V8 rejects it.
    await writeFile(main, text);
    const data = Buffer.from(good.subarray(good.indexOf(10) + 1));
    data.writeUInt32LE(data.readUInt32LE(4) ^ 0x5a5a5a5a, 4);
    const id = /^\/\/ nnf-env-build ([0-9a-f]+)$/m.exec(text)![1];
    await writeFile(cache, Buffer.concat([Buffer.from(`nnf-env-build ${id} ${fnv(data)}\n`), data]));
    r = run(bin, ['--version']);
    t.same([r.status, r.stdout, r.cache], [0, version, 'rejected'], 'a cache of another V8 (version hash): rejected by V8, still runs');

    if (process.getuid?.() !== 0) {
      await chmod(cache, 0o000);
      r = run(bin, ['--version']);
      t.same([r.status, r.stdout, r.cache], [0, version, 'absent'], 'an unreadable cache: compiled as usual');
    }
  });

  t.test('installed layout: bin/nnf-env finds lib/nnf-env/nnf-env-main.cjs and its cache there', async (t) => {
    const prefix = await mkdtemp(join(tmpdir(), 'nnf-env-cc-prefix-'));
    t.teardown(() => rm(prefix, { recursive: true, force: true }));
    await mkdir(join(prefix, 'bin'));
    await mkdir(join(prefix, 'lib', 'nnf-env'), { recursive: true });
    await copyFile(join(STANDALONE, 'nnf-env.cjs'), join(prefix, 'bin', 'nnf-env'));
    for (const f of ['nnf-env-main.cjs', 'nnf-env-commands.cjs']) await copyFile(join(STANDALONE, f), join(prefix, 'lib', 'nnf-env', f));
    const bin = join(prefix, 'bin', 'nnf-env');
    t.equal(run(bin, ['--version'], { NNF_ENV_WRITE_CODE_CACHE: '1' }).status, 0);
    t.ok(existsSync(join(prefix, 'lib', 'nnf-env', 'nnf-env-main.cjs.v8cache')), 'the cache sits beside the bundle in lib/nnf-env');
    const r = run(bin, ['jobid', '--to', 'dec', 'f2']);
    t.same([r.status, r.stdout, r.cache], [0, '1\n', 'used']);
    await rm(join(prefix, 'lib', 'nnf-env', 'nnf-env-main.cjs'));
    const missing = run(bin, ['--version']);
    t.equal(missing.status, 70, 'without the bundle: a clear error, not a stack trace');
    t.match(missing.stderr, /this command's code is missing: none of .*nnf-env-main\.cjs.* exists/);
  });
}
