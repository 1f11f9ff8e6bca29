import { NnfEnvError } from '../core/errors.js';
import type { SystemConfiguration } from './dws-types.js';

/**
 * Which rabbit serves this compute node, decided from one source at a time. Pure: the rabbit
 * controller feeds it the SystemConfiguration it watches, or the rabbitmapping file it read.
 */
export type RabbitAssignment =
  | { kind: 'rabbit'; rabbit: string; source: RabbitSource }
  /** The source says this node has no rabbit (e.g. `externalComputeNodes`). */
  | { kind: 'none'; source: RabbitSource; reason: string }
  /** The source does not mention this node at all. */
  | { kind: 'unknown'; source: RabbitSource; reason: string };

export type RabbitSource = 'config' | 'systemconfiguration' | 'rabbitmapping';

export class RabbitMappingError extends NnfEnvError {
  constructor(message: string, file: string, cause?: unknown) {
    super('RABBIT_MAPPING_INVALID', message, {
      hint: `regenerate ${file} with \`flux rabbitmapping > ${file}\`, or set RABBIT_NAME`,
      cause,
    });
  }
}

/** A short hostname: what DWS uses for compute names. */
export function shortName(host: string): string {
  const dot = host.indexOf('.');
  return dot > 0 ? host.slice(0, dot) : host;
}

function sameNode(a: string, b: string): boolean {
  return a === b || shortName(a) === shortName(b);
}

export function rabbitFromSystemConfiguration(sc: SystemConfiguration | undefined, nodeName: string): RabbitAssignment {
  const source = 'systemconfiguration' as const;
  if (sc === undefined) return { kind: 'unknown', source, reason: 'SystemConfiguration default/default does not exist' };
  const spec = sc.spec ?? {};
  const found: string[] = [];
  for (const sn of Array.isArray(spec.storageNodes) ? spec.storageNodes : []) {
    if (!sn || typeof sn.name !== 'string' || !Array.isArray(sn.computesAccess)) continue;
    if (sn.type !== undefined && sn.type !== 'Rabbit') continue;
    if (sn.computesAccess.some((c) => c && typeof c.name === 'string' && sameNode(c.name, nodeName))) found.push(sn.name);
  }
  if (found.length > 0) {
    // A compute has one rabbit; if an admin listed it twice, the first one wins and the order is stable.
    return { kind: 'rabbit', rabbit: found[0]!, source };
  }
  const external = Array.isArray(spec.externalComputeNodes) ? spec.externalComputeNodes : [];
  if (external.some((c) => c && typeof c.name === 'string' && sameNode(c.name, nodeName))) {
    return { kind: 'none', source, reason: `${nodeName} is an external compute node (no rabbit) in SystemConfiguration default/default` };
  }
  return { kind: 'unknown', source, reason: `${nodeName} is not listed in any rabbit's computesAccess in SystemConfiguration default/default` };
}

/** `flux rabbitmapping` output: `{"computes": {"<compute>": "<rabbit>"}, "rabbits": {...}}`. */
export interface RabbitMapping {
  computes: Record<string, string>;
}

export function parseRabbitMapping(text: string, file: string): RabbitMapping {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RabbitMappingError(`${file} is not valid JSON: ${(err as Error).message}`, file, err);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new RabbitMappingError(`${file} must hold a JSON object with a "computes" map`, file);
  }
  const computes = (doc as { computes?: unknown }).computes;
  if (computes === null || typeof computes !== 'object' || Array.isArray(computes)) {
    throw new RabbitMappingError(`${file} has no "computes" object (compute name -> rabbit name)`, file);
  }
  const out: Record<string, string> = {};
  for (const [compute, rabbit] of Object.entries(computes as Record<string, unknown>)) {
    if (typeof rabbit !== 'string' || rabbit === '') {
      throw new RabbitMappingError(`${file}: computes.${compute} must be a rabbit name (string), got ${JSON.stringify(rabbit)}`, file);
    }
    out[compute] = rabbit;
  }
  return { computes: out };
}

export function rabbitFromMapping(mapping: RabbitMapping, nodeName: string): RabbitAssignment {
  const source = 'rabbitmapping' as const;
  const direct = Object.hasOwn(mapping.computes, nodeName) ? mapping.computes[nodeName] : undefined;
  if (direct !== undefined) return { kind: 'rabbit', rabbit: direct, source };
  for (const [compute, rabbit] of Object.entries(mapping.computes)) {
    if (sameNode(compute, nodeName)) return { kind: 'rabbit', rabbit, source };
  }
  return { kind: 'unknown', source, reason: `${nodeName} is not in the rabbit mapping` };
}
