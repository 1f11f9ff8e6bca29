import t from 'tap';
import {
  HOSTS_BEGIN_MARKER,
  HOSTS_END_MARKER,
  HOSTS_END_MARKER_ADDED_NEWLINE,
  HostsEntryError,
  planHostsFile,
  readHostsBlock,
  renderHostsBlock,
  type HostsEntry,
} from '../../src/domain/hosts-block.js';
import { seededRandom } from '../helpers/prng.js';

const E: HostsEntry = { address: '10.0.0.1', names: ['local-rabbit'] };
const E6: HostsEntry = { address: 'fd00::1:2', names: ['local-rabbit', 'rabbit-node-1'] };
const block = (e: HostsEntry, eol: '\n' | '\r\n' = '\n', added = false) => renderHostsBlock(e, eol, added);

t.test('block text', async (t) => {
  t.equal(block(E), `${HOSTS_BEGIN_MARKER}\n10.0.0.1\tlocal-rabbit\n${HOSTS_END_MARKER}\n`);
  t.equal(block(E6, '\r\n'), `${HOSTS_BEGIN_MARKER}\r\nfd00::1:2\tlocal-rabbit rabbit-node-1\r\n${HOSTS_END_MARKER}\r\n`);
});

t.test('table', async (t) => {
  const cases: Array<{ name: string; before: string; entry: HostsEntry | null; after: string; warnings?: number }> = [
    { name: 'empty file', before: '', entry: E, after: block(E) },
    { name: 'empty file, remove', before: '', entry: null, after: '' },
    { name: 'append after newline', before: '127.0.0.1 localhost\n', entry: E, after: '127.0.0.1 localhost\n' + block(E) },
    {
      name: 'no trailing newline: line ended, END records it',
      before: '127.0.0.1 localhost',
      entry: E,
      after: '127.0.0.1 localhost\n' + block(E, '\n', true),
    },
    { name: 'CRLF file keeps CRLF', before: 'a b\r\nc d\r\n', entry: E, after: 'a b\r\nc d\r\n' + block(E, '\r\n') },
    { name: 'CRLF file without final newline', before: 'a b\r\nc d', entry: E, after: 'a b\r\nc d\r\n' + block(E, '\r\n', true) },
    {
      name: 'replace in place, lines after kept',
      before: 'x y\n' + block(E) + 'after line\n',
      entry: E6,
      after: 'x y\n' + block(E6) + 'after line\n',
    },
    { name: 'same entry: unchanged', before: 'x y\n' + block(E) + 'z\n', entry: E, after: 'x y\n' + block(E) + 'z\n' },
    { name: 'remove in the middle', before: 'x y\n' + block(E) + 'z\n', entry: null, after: 'x y\nz\n' },
    { name: 'remove restores missing final newline', before: 'x y\n' + block(E, '\n', true), entry: null, after: 'x y' },
    {
      name: 'added-newline flag is moot once lines follow the block',
      before: 'x y\n' + block(E, '\n', true) + 'admin\n',
      entry: null,
      after: 'x y\nadmin\n',
    },
    { name: 'no block, remove: unchanged', before: 'a b\n# comment', entry: null, after: 'a b\n# comment' },
    {
      name: 'BEGIN without END: left alone, new block appended',
      before: `a b\n${HOSTS_BEGIN_MARKER}\n1.2.3.4 admin-host\n`,
      entry: E,
      after: `a b\n${HOSTS_BEGIN_MARKER}\n1.2.3.4 admin-host\n` + block(E),
      warnings: 1,
    },
    {
      name: 'BEGIN without END, remove: nothing deleted',
      before: `a b\n${HOSTS_BEGIN_MARKER}\n1.2.3.4 admin-host\n`,
      entry: null,
      after: `a b\n${HOSTS_BEGIN_MARKER}\n1.2.3.4 admin-host\n`,
      warnings: 1,
    },
    {
      name: 'END without BEGIN: left alone',
      before: `a b\n${HOSTS_END_MARKER}\nc d\n`,
      entry: E,
      after: `a b\n${HOSTS_END_MARKER}\nc d\n` + block(E),
      warnings: 1,
    },
    {
      name: 'two BEGINs then END: the second pair is the block',
      before: `${HOSTS_BEGIN_MARKER}\nkeep me\n` + block(E) + 'tail\n',
      entry: E6,
      after: `${HOSTS_BEGIN_MARKER}\nkeep me\n` + block(E6) + 'tail\n',
      warnings: 1,
    },
    {
      name: 'duplicate blocks: first rewritten, others removed',
      before: 'a\n' + block(E) + 'b\n' + block(E) + 'c\n',
      entry: E6,
      after: 'a\n' + block(E6) + 'b\nc\n',
      warnings: 1,
    },
    {
      name: 'marker look-alikes are ordinary lines',
      before: '#BEGIN nnf-env managed block\n# BEGIN nnf-env managed blocks\n',
      entry: E,
      after: '#BEGIN nnf-env managed block\n# BEGIN nnf-env managed blocks\n' + block(E),
    },
    {
      name: 'indented markers with trailing blanks are markers',
      before: `a\n  ${HOSTS_BEGIN_MARKER}  \n1.1.1.1 x\n\t${HOSTS_END_MARKER}\t\nz\n`,
      entry: E,
      after: 'a\n' + block(E) + 'z\n',
    },
    { name: 'BOM kept', before: '\u00EF\u00BB\u00BF127.0.0.1 localhost\n', entry: E, after: '\u00EF\u00BB\u00BF127.0.0.1 localhost\n' + block(E) },
    { name: 'mixed endings, LF majority', before: 'a\r\nb\nc\n', entry: E, after: 'a\r\nb\nc\n' + block(E) },
    { name: 'old END without line ending gets one', before: 'a\n' + block(E).slice(0, -1), entry: E, after: 'a\n' + block(E) },
  ];
  for (const c of cases) {
    const plan = planHostsFile(c.before, c.entry);
    t.equal(plan.content, c.after, c.name);
    t.equal(plan.changed, c.before !== c.after, `${c.name}: changed`);
    t.equal(plan.warnings.length, c.warnings ?? 0, `${c.name}: warnings ${JSON.stringify(plan.warnings)}`);
    t.equal(planHostsFile(plan.content, c.entry).changed, false, `${c.name}: idempotent`);
  }
});

t.test('conflicts are reported with line numbers, never touched', async (t) => {
  const before = '127.0.0.1 localhost\n10.9.9.9\tLOCAL-Rabbit other # admin\n# 10.8.8.8 local-rabbit\n' + block(E) + 'fd00::9 foo rabbit-node-1\n';
  const plan = planHostsFile(before, E6);
  t.same(plan.conflicts, [
    { line: 2, text: '10.9.9.9\tLOCAL-Rabbit other # admin', name: 'local-rabbit', address: '10.9.9.9' },
    { line: 7, text: 'fd00::9 foo rabbit-node-1', name: 'rabbit-node-1', address: 'fd00::9' },
  ]);
  t.ok(plan.content.startsWith('127.0.0.1 localhost\n10.9.9.9\tLOCAL-Rabbit other # admin\n# 10.8.8.8 local-rabbit\n'));
  t.same(planHostsFile(before, null).conflicts, [], 'removing reports no conflicts');
});

t.test('invalid entries are typed errors', async (t) => {
  const bad: Array<[HostsEntry, string]> = [
    [{ address: '10.0.0.256', names: ['a'] }, 'INVALID_HOSTS_ADDRESS'],
    [{ address: '10.0.0.1 evil', names: ['a'] }, 'INVALID_HOSTS_ADDRESS'],
    [{ address: 'rabbit-1', names: ['a'] }, 'INVALID_HOSTS_ADDRESS'],
    [{ address: '10.0.0.1\n1.2.3.4', names: ['a'] }, 'INVALID_HOSTS_ADDRESS'],
    [{ address: '10.0.0.1', names: [] }, 'NO_HOSTS_NAMES'],
    [{ address: '10.0.0.1', names: ['bad_name'] }, 'INVALID_HOSTS_NAME'],
    [{ address: '10.0.0.1', names: ['-x'] }, 'INVALID_HOSTS_NAME'],
    [{ address: '10.0.0.1', names: ['a b'] }, 'INVALID_HOSTS_NAME'],
    [{ address: '10.0.0.1', names: ['x#y'] }, 'INVALID_HOSTS_NAME'],
    [{ address: '10.0.0.1', names: ['1.2.3.4'] }, 'INVALID_HOSTS_NAME'],
    [{ address: '10.0.0.1', names: ['a'.repeat(64)] }, 'INVALID_HOSTS_NAME'],
    [{ address: '10.0.0.1', names: Array.from({ length: 40 }, (_, i) => `n${i}`) }, 'TOO_MANY_HOSTS_NAMES'],
  ];
  for (const [entry, code] of bad) {
    let caught: unknown;
    try {
      planHostsFile('a\n', entry);
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof HostsEntryError && caught.code === code && !!caught.hint, `${JSON.stringify(entry).slice(0, 60)} -> ${code}`);
  }
  t.equal(planHostsFile('', { address: '::1', names: ['Local-Rabbit', 'local-rabbit', 'r.example.com'] }).content, block({ address: '::1', names: ['Local-Rabbit', 'r.example.com'] }), 'duplicate names dropped');
});

t.test('readHostsBlock', async (t) => {
  t.same(readHostsBlock('a\n' + block(E6) + 'b\n'), E6);
  t.equal(readHostsBlock('a\n'), null);
  t.equal(readHostsBlock(`${HOSTS_BEGIN_MARKER}\n1.2.3.4 x\n`), null, 'BEGIN without END holds nothing');
});

// ---------------------------------------------------------------------------------------
// Fuzz: random files, as bytes decoded latin1 like HostsWriter does.


const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

function generator(seed: number) {
  const rnd = seededRandom(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const ip4 = () => `${int(256)}.${int(256)}.${int(256)}.${int(256)}`;
  const ip6 = () => `fd00::${int(65536).toString(16)}:${int(65536).toString(16)}`;
  const host = () => pick(['node', 'rabbit', 'x', 'compute-01', 'svc.example.com']) + int(100);
  const line = (): string => {
    switch (int(12)) {
      case 0: return '';
      case 1: return pick([' ', '\t', '  \t ']);
      case 2: return '# ' + pick(['comment', 'managed by puppet', 'BEGIN something', 'END nnf-env', '#BEGIN nnf-env managed block']);
      case 3: return `${ip4()}\t${host()} ${host()}`;
      case 4: return `${ip6()} ${host()}`;
      case 5: return `${pick([ip4(), ip6()])} ${pick(['local-rabbit', 'LOCAL-RABBIT', 'rabbit-node-1'])}${pick(['', ' # admin', '\talias'])}`;
      case 6: return latin1(pick(['# café ☕ 日本語', `${ip4()} naïve-host`, '# 🐇 rabbit']));
      case 7: return Array.from({ length: 1 + int(20) }, () => String.fromCharCode(0x80 + int(128))).join(''); // invalid UTF-8
      case 8: return `# BEGIN nnf-env managed blocks ${int(9)}`; // look-alike, not a marker
      case 9: return `${ip4()} a\rb`; // stray CR inside a line
      case 10: return '127.0.0.1 localhost';
      default: return `${ip4()}   ${host()}   # trailing`;
    }
  };
  const eolStyle = () => pick(['lf', 'crlf', 'mixed'] as const);
  const text = (n: number, style: 'lf' | 'crlf' | 'mixed', final: boolean): string => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      parts.push(line());
      if (i < n - 1 || final) parts.push(style === 'lf' ? '\n' : style === 'crlf' ? '\r\n' : pick(['\n', '\r\n']));
    }
    return parts.join('');
  };
  const entry = (): HostsEntry => ({ address: pick([ip4(), ip6()]), names: pick([['local-rabbit'], ['local-rabbit', 'rabbit-node-1'], ['lr']]) });
  return { rnd, int, pick, text, eolStyle, entry };
}

/** The line ending planHostsFile must choose, computed independently. */
function expectedEol(s: string): '\n' | '\r\n' {
  const crlf = s.split('\r\n').length - 1;
  const lf = s.split('\n').length - 1 - crlf;
  return crlf > lf ? '\r\n' : '\n';
}

t.test('fuzz: files without a block', async (t) => {
  const g = generator(0x5eed1);
  let files = 0;
  let noFinalNewline = 0;
  let withConflicts = 0;
  for (let i = 0; i < 3000; i++) {
    const x = g.int(10) === 0 ? '' : (g.int(4) === 0 ? '\u00EF\u00BB\u00BF' : '') + g.text(1 + g.int(30), g.eolStyle(), g.int(3) !== 0);
    const e1 = g.entry();
    const e2 = g.entry();
    files++;
    const p1 = planHostsFile(x, e1);
    const eol = expectedEol(x);
    const pad = x === '' || x.endsWith('\n') ? '' : eol;
    if (pad) noFinalNewline++;
    if (p1.conflicts.length) withConflicts++;
    const want = x + pad + block(e1, eol, pad !== '');
    if (p1.content !== want) {
      t.fail(`append differs for file ${i}`, { x: JSON.stringify(x), got: JSON.stringify(p1.content) });
      break;
    }
    const again = planHostsFile(p1.content, e1);
    const p2 = planHostsFile(p1.content, e2);
    const removed = planHostsFile(p1.content, null);
    const removed2 = planHostsFile(p2.content, null);
    if (again.changed || again.content !== p1.content) { t.fail(`not idempotent: file ${i}`); break; }
    if (p2.content !== x + pad + block(e2, eol, pad !== '')) { t.fail(`replace differs: file ${i}`); break; }
    if (removed.content !== x || removed2.content !== x) { t.fail(`remove does not restore: file ${i}`, { x: JSON.stringify(x) }); break; }
    if (p1.content.length === 0) { t.fail('empty'); break; }
    if (p1.warnings.length) { t.fail(`unexpected warnings ${p1.warnings}`); break; }
    for (const c of p1.conflicts) {
      if (!c.text.toLowerCase().includes(c.name.toLowerCase())) { t.fail(`bogus conflict ${JSON.stringify(c)}`); break; }
    }
  }
  t.equal(files, 3000);
  t.ok(noFinalNewline > 100 && withConflicts > 100, `coverage: ${noFinalNewline} without final newline, ${withConflicts} with conflicts`);
  t.comment(`fuzz (no block): ${files} files, ${noFinalNewline} without final newline, ${withConflicts} with admin entries for our names`);
});

t.test('fuzz: files with a block, broken markers, duplicates', async (t) => {
  const g = generator(0x5eed2);
  const counts = { inPlace: 0, stray: 0, duplicates: 0 };
  for (let i = 0; i < 3000; i++) {
    const style = g.eolStyle();
    const a = g.int(5) === 0 ? '' : g.text(1 + g.int(20), style, true); // ends with a line ending (or is empty)
    const c = g.int(4) === 0 ? '' : g.text(1 + g.int(20), style, g.int(2) === 0);
    const e0 = g.entry();
    const e1 = g.entry();
    const kind = g.int(3);
    if (kind === 0) {
      // A block in the middle: rewritten in place, A and C untouched.
      counts.inPlace++;
      const blockEol = g.pick(['\n', '\r\n'] as const);
      const x = a + block(e0, blockEol) + c;
      const eol = expectedEol(a + c);
      const p = planHostsFile(x, e1);
      if (p.content !== a + block(e1, eol) + c) { t.fail(`in place: file ${i}`, { x: JSON.stringify(x), got: JSON.stringify(p.content) }); break; }
      if (planHostsFile(x, null).content !== a + c) { t.fail(`remove: file ${i}`); break; }
      if (planHostsFile(p.content, e1).changed) { t.fail(`idempotent: file ${i}`); break; }
    } else if (kind === 1) {
      // A stray marker: left alone, nothing of the admin's removed, a block appended.
      counts.stray++;
      const marker = g.pick([HOSTS_BEGIN_MARKER, HOSTS_END_MARKER, HOSTS_END_MARKER_ADDED_NEWLINE]);
      const x = a + marker + (c === '' ? '' : '\n') + c;
      const p = planHostsFile(x, e1);
      if (!p.content.startsWith(x) || p.warnings.length === 0) { t.fail(`stray: file ${i}`, { x: JSON.stringify(x), got: JSON.stringify(p.content) }); break; }
      if (planHostsFile(p.content, null).content !== x) { t.fail(`stray remove: file ${i}`, { x: JSON.stringify(x) }); break; }
      if (planHostsFile(x, null).content !== x) { t.fail(`stray, nothing to remove: file ${i}`); break; }
      if (planHostsFile(p.content, e1).changed) { t.fail(`stray idempotent: file ${i}`); break; }
    } else {
      // Duplicated blocks: one remains where the first was.
      counts.duplicates++;
      const b = g.text(1 + g.int(5), style, true);
      const x = a + block(e0) + b + block(e0) + c;
      const eol = expectedEol(a + b + c);
      const p = planHostsFile(x, e1);
      if (p.content !== a + block(e1, eol) + b + c) { t.fail(`dups: file ${i}`); break; }
      if (planHostsFile(x, null).content !== a + b + c) { t.fail(`dups remove: file ${i}`); break; }
    }
  }
  t.ok(counts.inPlace > 500 && counts.stray > 500 && counts.duplicates > 500, JSON.stringify(counts));
  t.comment(`fuzz (blocks): ${JSON.stringify(counts)}`);
});

t.test('fuzz: 1 MB file', async (t) => {
  const g = generator(0x5eed3);
  let x = '';
  while (x.length < 1024 * 1024) x += g.text(500, 'mixed', true);
  x = x.slice(0, 1024 * 1024); // may cut a CRLF or end mid-line: fine
  const eol = expectedEol(x);
  const pad = x.endsWith('\n') ? '' : eol;
  const p = planHostsFile(x, E);
  t.equal(p.content, x + pad + block(E, eol, pad !== ''), '1 MB: block appended, every byte kept');
  t.equal(planHostsFile(p.content, null).content, x, '1 MB: remove restores the bytes');
  t.equal(planHostsFile(p.content, E).changed, false, '1 MB: idempotent');
});
