import t from 'tap';
import { LineSplitter } from '../../src/kube/line-splitter.js';

function collect(maxLineBytes?: number, text = false) {
  const lines: string[] = [];
  const tooLong: number[] = [];
  const common = { ...(maxLineBytes ? { maxLineBytes } : {}), onTooLong: (n: number) => tooLong.push(n) };
  const s = text ? new LineSplitter({ ...common, onText: (l) => lines.push(l) }) : new LineSplitter({ ...common, onLine: (l) => lines.push(l.toString('utf8')) });
  return { s, lines, tooLong };
}

t.test('onText: every split position, including inside multi-byte UTF-8 characters; limits in bytes', async (t) => {
  const events = ['{"a":"ünïcødé"}', '{"b":"😀 emoji"}', '{"c":"日本語テキスト"}'];
  const bytes = Buffer.from(events.join('\r\n') + '\n', 'utf8');
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const { s, lines } = collect(undefined, true);
      s.push(bytes.subarray(0, i));
      s.push(bytes.subarray(i, j));
      s.push(bytes.subarray(j));
      s.end();
      if (JSON.stringify(lines) !== JSON.stringify(events)) {
        t.fail(`split at ${i}/${j} gave ${JSON.stringify(lines)}`);
        return;
      }
      t.equal(s.bufferedBytes, 0);
    }
  }
  // '€' is 3 bytes: a 3-character line of them is 9 bytes, over a limit of 8 even though it is 3 characters.
  const { s, lines, tooLong } = collect(8, true);
  s.push(Buffer.from('€€\n€€€\n'));
  t.same(lines, ['€€']);
  t.same(tooLong, [9]);
});

t.test('onText: a too-long line across chunks is skipped without buffering it; a throwing handler leaves no stale line', async (t) => {
  const { s, lines, tooLong } = collect(1024, true);
  const block = Buffer.alloc(64 * 1024, 0x61);
  s.push(Buffer.from('{"ok":0}\n{"par'));
  for (let i = 0; i < 16; i++) {
    s.push(block);
    t.ok(s.bufferedBytes <= 1024);
  }
  s.push(Buffer.from('tail\n{"ok":1}\n'));
  t.same(tooLong, [5 + 16 * 64 * 1024 + 4], "{\"par + the blocks + tail");
  t.same(lines, ['{"ok":0}', '{"ok":1}']);

  let calls = 0;
  const thrower = new LineSplitter({
    onText: (l) => {
      calls++;
      if (l === 'bad') throw new Error('handler failed');
      lines.push(l);
    },
    onTooLong: () => {},
  });
  thrower.push(Buffer.from('b'));
  t.throws(() => thrower.push(Buffer.from('ad\n')), /handler failed/);
  t.equal(thrower.bufferedBytes, 0);
  thrower.push(Buffer.from('next\n'));
  t.equal(calls, 2);
  t.equal(lines[lines.length - 1], 'next');
});

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
