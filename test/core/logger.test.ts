import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger, loggerFromConfig, REDACT_PATHS } from '../../src/core/logger.js';

/** A destination that keeps what was written, optionally claiming to be a terminal. */
function capture(isTTY = false): Writable & { text: () => string; isTTY?: boolean } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  }) as Writable & { text: () => string; isTTY?: boolean };
  w.text = () => chunks.join('');
  if (isTTY) w.isTTY = true;
  return w;
}

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-VALUE';

function logSecrets(log: ReturnType<typeof createLogger>): void {
  log.info({ token: TOKEN }, 'top level');
  log.info({ kube: { token: TOKEN } }, 'one level down');
  log.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'request headers');
  log.info({ headers: { authorization: `Bearer ${TOKEN}`, Authorization: `Bearer ${TOKEN}` } }, 'headers');
  log.info({ err: { config: { headers: { authorization: `Bearer ${TOKEN}` } } } }, 'error config');
  log.info({ job: { env: { DW_WORKFLOW_TOKEN: TOKEN, DW_JOB_x: '/mnt/nnf/x' } } }, 'job env');
  log.info({ config: { KUBE_TOKEN: TOKEN } }, 'config');
  log.info({ a: { b: { token: TOKEN } } }, 'two levels down');
}

t.test('JSON lines with level, time, name; tokens redacted', async (t) => {
  const out = capture();
  const log = createLogger({ level: 'info', format: 'json', name: 'nnf-envd', destination: out });
  logSecrets(log);
  log.debug('not at info');
  const lines = out.text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, 8, 'debug filtered out');
  t.equal(lines[0]?.name, 'nnf-envd');
  t.equal(lines[0]?.level, 30);
  t.equal(lines[0]?.msg, 'top level');
  t.match(String(lines[0]?.time), /^\d{4}-\d\d-\d\dT/, 'ISO time');
  t.equal(lines[0]?.token, '<redacted>');
  t.same((lines[5]?.job as { env: unknown }).env, { DW_WORKFLOW_TOKEN: '<redacted>', DW_JOB_x: '/mnt/nnf/x' }, 'other fields kept');
  t.notMatch(out.text(), /SECRET-TOKEN-VALUE/, 'the token appears nowhere');
});

t.test('pretty output is synchronous, readable and redacted too', async (t) => {
  const out = capture();
  const log = createLogger({ level: 'debug', format: 'pretty', name: 'nnf-env', destination: out });
  logSecrets(log);
  log.debug({ job: 'fkEPGJX8vhd' }, 'tracked');
  // No await: pretty lines are written before the call returns.
  const text = out.text();
  t.match(text, /INFO.*\(nnf-env\): top level/);
  t.match(text, /DEBUG.*tracked/);
  t.match(text, /job: "fkEPGJX8vhd"/);
  t.notMatch(text, /^\{/m, 'not JSON');
  t.notMatch(text, /SECRET-TOKEN-VALUE/);
  t.notMatch(text, /\u001b\[/, 'no colours when the destination is not a terminal');
});

t.test('auto: pretty on a terminal, JSON otherwise', async (t) => {
  const tty = capture(true);
  createLogger({ format: 'auto', destination: tty }).info('hello');
  t.notMatch(tty.text(), /^\{/, 'pretty on a TTY');
  t.match(tty.text(), /hello/);
  const pipe = capture(false);
  createLogger({ format: 'auto', destination: pipe }).info('hello');
  t.equal((JSON.parse(pipe.text()) as { msg: string }).msg, 'hello', 'JSON into a pipe');
});

t.test('loggerFromConfig uses LOG_LEVEL and LOG_FORMAT', async (t) => {
  const out = capture();
  const log = loggerFromConfig({ LOG_LEVEL: 'warn', LOG_FORMAT: 'json' }, 'x', out);
  log.info('dropped');
  log.warn('kept');
  t.equal(out.text().trimEnd().split('\n').length, 1);
  t.equal(log.level, 'warn');
  t.ok(REDACT_PATHS.includes('token') && REDACT_PATHS.includes('*.token') && REDACT_PATHS.includes('headers.authorization'));
});
