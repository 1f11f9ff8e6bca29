import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fixture } from '../helpers/paths.js';
import {
  describeInput,
  formatJobId,
  isJobIdEncoding,
  JOBID_ENCODINGS,
  JobIdError,
  MAX_JOBID,
  parseJobId,
} from '../../src/contract/jobid.js';
import type { JobIdEncoding } from '../../src/contract/jobid.js';

interface Vectors {
  f58plain: [string, string][];
  also_decode_to_zero: string[];
  dothex: [string, string][];
  utf8_prefix: [string, string][];
}
const vectors = JSON.parse(readFileSync(fixture('flux-jobids.json'), 'utf8')) as Vectors;

t.test('shared fixture vectors', async (t) => {
  t.ok(vectors.f58plain.length >= 9, 'fixture has the f58plain table');
  for (const [dec, f58plain] of vectors.f58plain) {
    const id = BigInt(dec);
    t.equal(formatJobId(id, 'f58plain'), f58plain, `${dec} -> ${f58plain}`);
    t.equal(formatJobId(id, 'f58'), '\u0192' + f58plain.slice(1), `${dec} -> ƒ form`);
    t.equal(parseJobId(f58plain), id, `${f58plain} -> ${dec}`);
    t.equal(parseJobId('\u0192' + f58plain.slice(1)), id, `ƒ${f58plain.slice(1)} -> ${dec}`);
    t.equal(parseJobId(dec), id, `decimal ${dec}`);
    t.equal(formatJobId(id, 'dec'), dec);
  }
  for (const zero of vectors.also_decode_to_zero) t.equal(parseJobId(zero), 0n, `${JSON.stringify(zero)} -> 0`);
  for (const [dec, dothex] of vectors.dothex) {
    t.equal(parseJobId(dothex), BigInt(dec));
    t.equal(formatJobId(BigInt(dec), 'dothex'), dothex);
    t.equal(formatJobId(BigInt(dec), 'kvs'), 'job.' + dothex);
  }
  for (const [dec, s] of vectors.utf8_prefix) {
    t.equal(parseJobId(s), BigInt(dec));
    t.equal(formatJobId(BigInt(dec), 'f58'), s);
  }
});

// Vectors computed by hand from RFC 19 (base58 with flux's alphabet, 16-bit dothex groups).
const FLUX_CORE_VECTORS: Array<{ id: bigint } & Record<Exclude<JobIdEncoding, 'f58plain'>, string>> = [
  { id: 0n, dec: '0', hex: '0x0', dothex: '0000.0000.0000.0000', kvs: 'job.0000.0000.0000.0000', f58: 'ƒ1' },
  { id: 1n, dec: '1', hex: '0x1', dothex: '0000.0000.0000.0001', kvs: 'job.0000.0000.0000.0001', f58: 'ƒ2' },
  { id: 65535n, dec: '65535', hex: '0xffff', dothex: '0000.0000.0000.ffff', kvs: 'job.0000.0000.0000.ffff', f58: 'ƒLUv' },
  { id: 6787342413402046n, dec: '6787342413402046', hex: '0x181d0d4d850fbe', dothex: '0018.1d0d.4d85.0fbe',
    kvs: 'job.0018.1d0d.4d85.0fbe', f58: 'ƒuzzybunny' },
  { id: 18446744073709551614n, dec: '18446744073709551614', hex: '0xfffffffffffffffe', dothex: 'ffff.ffff.ffff.fffe',
    kvs: 'job.ffff.ffff.ffff.fffe', f58: 'ƒjpXCZedGfVP' },
];

t.test('flux-core vectors, every encoding both ways', async (t) => {
  for (const v of FLUX_CORE_VECTORS) {
    for (const enc of JOBID_ENCODINGS) {
      if (enc === 'f58plain') continue;
      const s = v[enc];
      t.equal(parseJobId(s), v.id, `parse ${enc} ${s}`);
      t.equal(formatJobId(v.id, enc), s, `format ${enc} ${v.id}`);
    }
  }
  t.equal(parseJobId('ffff.ffff.ffff.ffff'), MAX_JOBID);
  t.equal(formatJobId(MAX_JOBID, 'hex'), '0xffffffffffffffff');
  t.equal(formatJobId(MAX_JOBID, 'f58plain'), 'fjpXCZedGfVQ');
});

t.test('random 64-bit values round-trip through every encoding', async (t) => {
  const ids: bigint[] = [0n, 1n, 57n, 58n, MAX_JOBID, MAX_JOBID - 1n, 1n << 32n, (1n << 32n) - 1n, 1n << 63n];
  for (let i = 0; i < 3000; i++) ids.push(randomBytes(8).readBigUInt64BE());
  // Small values too, since every encoding has a special short form near zero.
  for (let i = 0; i < 500; i++) ids.push(BigInt(randomBytes(2).readUInt16BE()) >> BigInt(i % 16));
  let checked = 0;
  for (const id of ids) {
    for (const enc of JOBID_ENCODINGS) {
      const s = formatJobId(id, enc);
      if (parseJobId(s) !== id) t.fail(`${enc} ${s} did not round-trip ${id}`);
      checked++;
    }
    // The spellings a user or Flux may hand us for the same id.
    const variants = [
      ` \t${formatJobId(id, 'f58plain')}\n`,
      'job.' + formatJobId(id, 'dothex').toUpperCase(),
      '0x' + formatJobId(id, 'hex').slice(2).toUpperCase(),
      '000' + formatJobId(id, 'dec'),
    ];
    for (const s of variants) if (parseJobId(s) !== id) t.fail(`${JSON.stringify(s)} did not decode to ${id}`);
    checked += variants.length;
  }
  t.equal(checked, ids.length * (JOBID_ENCODINGS.length + 4), `${checked} conversions checked`);
  t.equal(formatJobId(MAX_JOBID, 'f58plain').length, 12, 'longest f58plain is f + 11 digits');
});

t.test('rejects everything else with JOBID_INVALID', async (t) => {
  const bad: Array<[string, RegExp?]> = [
    [''],
    ['   ', /empty/],
    ['-1', /no sign/],
    ['+1'],
    ['invalid'],
    ['0.0.0', /dothex/],
    ['0.0.0.0.0'],
    ['0.0.0.g'],
    ['00000.0.0.0'],
    ['job.0.0'],
    ['job.0.0.0.0.0'],
    ['notjob.0.0.0.0'],
    ['job.'],
    ['f'],
    ['ƒ'],
    ['f0', /base58/],
    ['fO'],
    ['fI'],
    ['fl'],
    ['F2'],
    ['f2 3'],
    ['fjpXCZedGfVR', /2\^64-1/],
    ['f1111111111111111111111111jpXCZedGfVR', /2\^64-1/],
    ['fzzzzzzzzzzzz'],
    ['academy-academy-academy--academy-academy-academy', /words ids are not supported/],
    ['invalid-words-test', /words ids are not supported/],
    ['😃', /emoji ids are not supported/],
    ['🦄x', /emoji ids are not supported/],
    ['0x', /hex/],
    ['0x10000000000000000', /2\^64-1/],
    ['0xg'],
    ['0X1'],
    ['18446744073709551616', /2\^64-1/],
    ['99999999999999999999999'],
    ['1e3'],
    ['12 34'],
    ['١٢٣'],
    ['\u00a01\u00a0'],
    ['../x'],
    ['../../etc/passwd'],
    ['/etc/passwd'],
    ['f2/../../x'],
    ['fkEPGJX8vhd\0'],
    ['fkEPGJX8vhd.env'],
    ['1'.repeat(257), /longer than 256/],
    [' '.repeat(300) + '1'],
  ];
  for (const [input, reason] of bad) {
    let caught: unknown;
    try {
      parseJobId(input);
    } catch (err) {
      caught = err;
    }
    const label = describeInput(input);
    if (!(caught instanceof JobIdError)) {
      t.fail(`${label} was accepted or threw something else`);
      continue;
    }
    t.equal(caught.code, 'JOBID_INVALID', `${label} rejected`);
    if (reason) t.match(caught.message, reason, `${label} reason`);
    t.match(caught.hint ?? '', /decimal.*hex.*dothex.*kvs.*F58.*flux job id --to=f58/, 'hint lists the accepted encodings');
  }
  t.throws(() => parseJobId(42 as unknown as string), JobIdError);
});

t.test('error messages quote the input safely', async (t) => {
  const err = (s: string): JobIdError => {
    try {
      parseJobId(s);
    } catch (e) {
      return e as JobIdError;
    }
    throw new Error('accepted');
  };
  const e1 = err('a\nb\x1b[31mred\u202eevil"\\');
  t.equal(e1.input, '"a\\nb\\x1b[31mred\\u{202e}evil\\"\\\\"');
  t.notMatch(e1.message, /[\u0000-\u001f\u007f-\u009f\u202e]/, 'no raw control characters in the message');
  t.match(e1.describe(), /accepted encodings/);
  const long = 'x'.repeat(200);
  const e2 = err(long);
  t.ok(e2.message.length < 400, 'long input is truncated in the message');
  t.match(e2.input, /\.\.\. \(200 characters\)$/);
  t.equal(err('\u{1F984}\u{1F984}').input, '"\u{1F984}\u{1F984}"', 'printable non-ASCII is kept');
  t.equal(describeInput('\ud800x'), '"\\u{d800}x"', 'lone surrogate escaped');
});

t.test('formatJobId range and encodings', async (t) => {
  t.throws(() => formatJobId(-1n, 'dec'), JobIdError);
  t.throws(() => formatJobId(MAX_JOBID + 1n, 'f58'), JobIdError);
  t.throws(() => formatJobId(1 as unknown as bigint, 'f58'), JobIdError);
  t.throws(() => formatJobId(1n, 'octal' as JobIdEncoding), JobIdError);
  t.ok(isJobIdEncoding('kvs'));
  t.notOk(isJobIdEncoding('words'));
  t.notOk(isJobIdEncoding('octal'));
  t.same([...JOBID_ENCODINGS], ['dec', 'f58', 'f58plain', 'hex', 'dothex', 'kvs']);
});
