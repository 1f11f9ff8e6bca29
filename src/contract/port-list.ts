/**
 * The syntax of a port list as NNF_CONTAINER_PORTS writes it (`4000,4001` or `4000-4003`), and
 * the error every port check raises. Shared by the delivery plan, the prober and the helper.
 */
import { NnfEnvError } from '../core/errors.js';

export type ProbeErrorCode = 'INVALID_PORT' | 'INVALID_PORT_LIST' | 'INVALID_PROBE_HOST' | 'INVALID_PROBE_OPTIONS';

export class ProbeError extends NnfEnvError {
  declare readonly code: ProbeErrorCode;
  constructor(code: ProbeErrorCode, message: string, hint: string) {
    super(code, message, { hint });
  }
}

/** Most ports one probe (or one NNF_CONTAINER_PORTS value) may name. */
export const MAX_PROBE_PORTS = 1024;

export function checkPort(port: number, context: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ProbeError('INVALID_PORT', `${context}: ${port} is not a TCP port (1-65535)`, 'check NNF_CONTAINER_PORTS of the workflow');
  }
  return port;
}

/**
 * `4000,4001` or `4000-4003,4010` -> the ports, duplicates dropped, in first-seen order.
 * Blanks around items and empty items are tolerated; anything else is an error.
 */
export function parsePortList(s: string): number[] {
  const ports: number[] = [];
  const seen = new Set<number>();
  const add = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    ports.push(p);
    if (ports.length > MAX_PROBE_PORTS) {
      throw new ProbeError('INVALID_PORT_LIST', `port list ${JSON.stringify(s.slice(0, 80))} names more than ${MAX_PROBE_PORTS} ports`, 'a container exposes a handful of ports; check the value');
    }
  };
  for (const raw of s.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(item);
    if (!m) {
      throw new ProbeError('INVALID_PORT_LIST', `port list ${JSON.stringify(s.slice(0, 80))}: ${JSON.stringify(item.slice(0, 40))} is neither a port nor a range like 4000-4003`,
        'expected comma-separated ports or ranges, e.g. 4000,4001 or 4000-4003');
    }
    const lo = checkPort(Number(m[1]), `port list ${JSON.stringify(s.slice(0, 80))}`);
    const hi = m[2] === undefined ? lo : checkPort(Number(m[2]), `port list ${JSON.stringify(s.slice(0, 80))}`);
    if (hi < lo) {
      throw new ProbeError('INVALID_PORT_LIST', `port list ${JSON.stringify(s.slice(0, 80))}: range ${item} runs backwards`, 'write ranges low-high, e.g. 4000-4003');
    }
    if (hi - lo >= MAX_PROBE_PORTS) {
      throw new ProbeError('INVALID_PORT_LIST', `port list ${JSON.stringify(s.slice(0, 80))}: range ${item} names more than ${MAX_PROBE_PORTS} ports`, 'a container exposes a handful of ports; check the value');
    }
    for (let p = lo; p <= hi; p++) add(p);
  }
  return ports;
}
