/**
 * The layers of src/ (docs/ARCHITECTURE.md) import one way: a folder imports only folders below
 * it, the folders of one layer never import each other, and no two files import each other
 * (directly or round a cycle). Read from the TypeScript sources: static imports, `import type`,
 * dynamic import() and `new URL(..., import.meta.url)` module references all count.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

/** Lowest first. Folders on one line form one layer. */
export const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['contract'],
  ['config', 'kube', 'flux'],
  ['domain'],
  ['fs', 'net'],
  ['api'],
  ['daemon', 'cli', 'sim'],
  ['bin'],
];

const srcDir = join(repoRoot, 'src');
const rankOf = new Map<string, number>();
LAYERS.forEach((folders, rank) => folders.forEach((f) => rankOf.set(f, rank)));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*|require\(\s*)(['"])(\.{1,2}\/[^'"]+)\1/g;

/** Relative module references of a file, resolved to .ts paths under src/. */
function referencesOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const refs: string[] = [];
  for (const m of text.matchAll(SPECIFIER)) {
    const target = resolve(dirname(file), m[2]!).replace(/\.js$/, '.ts');
    refs.push(target.endsWith('.ts') ? target : `${target}.ts`);
  }
  return refs;
}

const folderOf = (file: string): string => relative(srcDir, file).split(sep)[0]!;
const files = sources(srcDir);
const graph = new Map(files.map((f) => [f, referencesOf(f)]));

t.test('every folder of src/ has a layer', async (t) => {
  const folders = new Set(files.map(folderOf));
  for (const f of folders) t.ok(rankOf.has(f), `src/${f}/ is in LAYERS (or a file sits loose in src/)`);
});

t.test('imports go down, never sideways or up', async (t) => {
  const bad: string[] = [];
  for (const [file, refs] of graph) {
    const from = folderOf(file);
    for (const ref of refs) {
      const to = folderOf(ref);
      if (to === from) continue;
      const a = rankOf.get(from), b = rankOf.get(to);
      if (a === undefined || b === undefined || b >= a) bad.push(`${relative(srcDir, file)} -> ${relative(srcDir, ref)} (${from} may import only ${LAYERS.slice(0, a ?? 0).flat().join(', ')})`);
    }
  }
  t.same(bad, [], 'no import against the layers');
});

t.test('no import cycles between files', async (t) => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(srcDir, p)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const r of graph.get(f) ?? []) if (graph.has(r)) visit(r, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  t.same(cycles, [], 'the file graph is acyclic');
});

t.test('every reference names a file that exists', async (t) => {
  const missing: string[] = [];
  for (const [file, refs] of graph) for (const r of refs) if (!graph.has(r)) missing.push(`${relative(srcDir, file)} -> ${relative(srcDir, r)}`);
  t.same(missing, []);
});
