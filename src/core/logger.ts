/**
 * The one way nnf-env makes a logger: pino JSON lines to stdout (journald stores them), or
 * pino-pretty lines for a person at a terminal. Pretty output is formatted in this thread,
 * synchronously (no worker-thread transport: nothing is lost at exit or crash, and a short
 * command does not pay for a thread). Token-bearing fields are redacted.
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { DestinationStream, Logger, LoggerOptions } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface CreateLoggerOptions {
  level?: LogLevel | string;
  format?: LogFormat;
  /** Shown as `name` in every line (nnf-envd, nnf-env prolog, ...). */
  name?: string;
  /** Default: stdout. Anything with write(string); auto format is pretty when it is a TTY. */
  destination?: DestinationStream | NodeJS.WritableStream;
  /** Extra fields on every line. Default: pid only (journald knows the host). */
  base?: Record<string, unknown>;
}

export const REDACTED = '<redacted>';

/**
 * Fields that can carry a bearer token or credentials, at the top level and one or two
 * levels down (err.config.headers.authorization, req.headers.authorization, ...).
 * pino matches whole path segments, so each spelling is listed.
 */
export const REDACT_PATHS: readonly string[] = (() => {
  const leaves = ['token', 'bearerToken', 'password', 'authorization', 'Authorization', 'DW_WORKFLOW_TOKEN', 'KUBE_TOKEN'];
  const paths = new Set<string>();
  for (const leaf of leaves) {
    paths.add(leaf);
    paths.add(`*.${leaf}`);
    paths.add(`*.*.${leaf}`);
    paths.add(`headers.${leaf}`);
    paths.add(`*.headers.${leaf}`);
    paths.add(`*.*.headers.${leaf}`);
    paths.add(`env.${leaf}`);
    paths.add(`*.env.${leaf}`);
  }
  paths.add('config.KUBE_TOKEN');
  paths.add('headers.cookie');
  paths.add('*.headers.cookie');
  return [...paths];
})();

function isTTY(stream: unknown): boolean {
  return (stream as { isTTY?: unknown } | undefined)?.isTTY === true;
}

export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const target = opts.destination ?? process.stdout;
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && isTTY(target));
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: opts.base ?? { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
  };
  if (opts.name !== undefined) options.name = opts.name;

  let stream: DestinationStream;
  if (pretty) {
    // Loaded only here: commands that never pretty-print do not pay for pino-pretty.
    const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    const prettify = prettyFactory({
      colorize: isTTY(target),
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    const out = opts.destination ?? pino.destination({ fd: 1, sync: true });
    stream = { write: (line: string) => void out.write(prettify(line)) };
  } else {
    stream = (opts.destination ?? pino.destination({ fd: 1, sync: true })) as DestinationStream;
  }
  return pino(options, stream);
}

/** A logger set up from the LOG_LEVEL and LOG_FORMAT configuration keys. */
export function loggerFromConfig(config: { LOG_LEVEL: string; LOG_FORMAT: string }, name?: string, destination?: CreateLoggerOptions['destination']): Logger {
  const opts: CreateLoggerOptions = { level: config.LOG_LEVEL, format: config.LOG_FORMAT as LogFormat };
  if (name !== undefined) opts.name = name;
  if (destination !== undefined) opts.destination = destination;
  return createLogger(opts);
}
