import { NnfEnvError } from '../core/errors.js';

/**
 * One entry of a Flux eventlog (RFC 18): `{"timestamp": <seconds>, "name": "...",
 * "context": {...}}`, one compact JSON object per line, as `flux job eventlog -f json` and
 * `flux job wait-event -f json` print them. `context` is optional.
 */
export interface FluxEvent {
  timestamp: number;
  name: string;
  context: Record<string, unknown>;
}

export class EventlogError extends NnfEnvError {}

export function parseEventLine(line: string, where: string): FluxEvent {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new EventlogError('FLUX_EVENTLOG_INVALID', `${where}: not a JSON eventlog entry: ${JSON.stringify(line.slice(0, 120))}`, {
      hint: 'nnf-envd runs flux job ... -f json; check FLUX_COMMAND',
    });
  }
  const o = v as Partial<FluxEvent> | null;
  if (o === null || typeof o !== 'object' || Array.isArray(o) || typeof o.timestamp !== 'number' || typeof o.name !== 'string' || o.name === '') {
    throw new EventlogError('FLUX_EVENTLOG_INVALID', `${where}: an eventlog entry needs a numeric "timestamp" and a "name" (RFC 18): ${line.slice(0, 120)}`);
  }
  const ctx = o.context;
  if (ctx !== undefined && (ctx === null || typeof ctx !== 'object' || Array.isArray(ctx))) {
    throw new EventlogError('FLUX_EVENTLOG_INVALID', `${where}: the "context" of event ${o.name} is not an object`);
  }
  return { timestamp: o.timestamp, name: o.name, context: (ctx ?? {}) as Record<string, unknown> };
}

/** A whole eventlog as printed (one entry per line). */
export function parseEventlog(text: string, where: string): FluxEvent[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l, i) => parseEventLine(l, `${where} line ${i + 1}`));
}
