/**
 * Which numbers are user and group ids, for every part that takes one (the control API, the
 * prolog, the daemon's records and chown). One rule, so that they cannot disagree.
 */

/** (uid_t)-1: "no change" to chown, never a real owner. */
export const NO_ID = 0xffff_ffff;

export function isValidId(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < NO_ID;
}

/** A decimal uid as Flux passes it (FLUX_JOB_USERID), or undefined when it is not one. */
export function parseId(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return isValidId(n) ? n : undefined;
}
