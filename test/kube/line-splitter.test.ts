import t from 'tap';
import { LineSplitter } from '../../src/kube/line-splitter.js';

function collect(maxLineBytes?: number) {
  const lines: string[] = [];
  const tooLong: number[] = [];
  const s = new LineSplitter({ ...(maxLineBytes ? { maxLineBytes } : {}), onLine: (l) => lines.push(l.toString('utf8')), onTooLong: (n) => tooLong.push(n) });
  return { s, lines, tooLong };
}

t.test('every split position, including inside multi-byte UTF-8 characters', async (t) => {
  const events = ['{"a":"ünïcødé"}', '{"b":"😀 emoji"}', '{"c":"日本語テキスト"}'];
  const bytes = Buffer.from(events.join('\n') + '\n', 'utf8');
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j += 3) {
      const { s, lines } = collect();
      s.push(bytes.subarray(0, i));
      s.push(bytes.subarray(i, j));
      s.push(bytes.subarray(j));
      s.end();
      if (JSON.stringify(lines) !== JSON.stringify(events)) {
        t.fail(`split at ${i}/${j} gave ${JSON.stringify(lines)}`);
        return;
      }
    }
  }
  t.pass('all splits give the same lines');
});

t.test('one byte at a time', async (t) => {
  const text = '{"x":"ä"}\n{"y":"€"}\n';
  const { s, lines } = collect();
  for (const b of Buffer.from(text)) s.push(Uint8Array.of(b));
  t.same(lines, ['{"x":"ä"}', '{"y":"€"}']);
  t.equal(s.bufferedBytes, 0);
});

t.test('many lines per chunk, CRLF, empty lines, last line without newline', async (t) => {
  const { s, lines } = collect();
  const many = Array.from({ length: 1000 }, (_, i) => `{"i":${i}}`);
  s.push(Buffer.from(many.join('\n') + '\n'));
  t.equal(lines.length, 1000);
  t.equal(lines[999], '{"i":999}');
  lines.length = 0;
  s.push(Buffer.from('a\r\n\n\nb\r\nlast'));
  t.same(lines, ['a', 'b']);
  t.equal(s.bufferedBytes, 4);
  s.end();
  t.same(lines, ['a', 'b', 'last']);
});

t.test('a line longer than the limit is reported and skipped; memory stays bounded', async (t) => {
  const max = 1024;
  const { s, lines, tooLong } = collect(max);
  s.push(Buffer.from('{"ok":1}\n'));
  // 10 MiB without a newline, in 64 KiB chunks that are all the same buffer: only the splitter could hold more.
  const block = Buffer.alloc(64 * 1024, 0x61);
  let highWater = 0;
  for (let i = 0; i < 160; i++) {
    s.push(block);
    highWater = Math.max(highWater, s.bufferedBytes);
  }
  t.ok(highWater <= max, `never held more than maxLineBytes (held ${highWater})`);
  s.push(Buffer.from('tail\n{"ok":2}\n'));
  t.same(tooLong, [160 * 64 * 1024 + 4]);
  t.same(lines, ['{"ok":1}', '{"ok":2}']);
});

t.test('a line just at the limit passes, one byte more does not (also across chunks)', async (t) => {
  const { s, lines, tooLong } = collect(8);
  s.push(Buffer.from('12345678\n'));
  s.push(Buffer.from('1234'));
  s.push(Buffer.from('56789\nok\n'));
  t.same(lines, ['12345678', 'ok']);
  t.same(tooLong, [9]);
});

t.test('a too-long line cut by the end of the stream is reported', async (t) => {
  const { s, tooLong } = collect(4);
  s.push(Buffer.from('abcdefgh'));
  s.end();
  t.same(tooLong, [8]);
});

t.test('bad maxLineBytes is refused', async (t) => {
  t.throws(() => new LineSplitter({ maxLineBytes: 0, onLine: () => {}, onTooLong: () => {} }), RangeError);
});
