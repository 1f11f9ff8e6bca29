/**
 * Address and hostname syntax shared by the hosts writer, local-rabbit.conf and the port
 * prober. Host and port always travel separately: nothing here splits `host:port` strings,
 * because that is how IPv6 literals get broken.
 */
import { isIP } from 'node:net';

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 63 bytes a
 * label, 253 in all. Something that parses as an IP address is not a host name (it would
 * make a hosts line that maps an address to an address).
 */
export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  if (isIP(name) !== 0) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/** 4 or 6 for an IP literal (IPv6 zone ids as node:net accepts them), 0 otherwise. */
export function ipFamily(address: string): 0 | 4 | 6 {
  return isIP(address) as 0 | 4 | 6;
}

/** `[::1]` -> `::1` (only when the inside is an IPv6 literal); anything else unchanged. */
export function stripBrackets(host: string): string {
  if (host.startsWith('[') && host.endsWith(']')) {
    const inner = host.slice(1, -1);
    if (isIP(inner) === 6) return inner;
  }
  return host;
}

/** `127.0.0.1:4000`, `[::1]:4000`, `rabbit-1:4000`: for messages only, never parsed back. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
