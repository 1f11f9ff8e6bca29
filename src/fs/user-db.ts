import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/**
 * Primary gids and group ids from the system's user database: /etc/passwd and /etc/group first
 * (cheap, no process), then `getent` for NSS sources (LDAP, sssd). Unknown: undefined.
 */
export interface UserDbOptions {
  passwdFile?: string;
  groupFile?: string;
  /** Use getent when the files do not know the id. Default true. */
  getent?: boolean;
}

/** Pure: the 4th field of the passwd line whose uid is `uid`. */
export function primaryGidFromPasswd(text: string, uid: number): number | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && f[2] === String(uid) && /^\d+$/.test(f[3]!)) return Number(f[3]);
  }
  return undefined;
}

/** Pure: the gid of group `name` (or `name` itself when numeric) from a group file. */
export function gidFromGroup(text: string, name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] === name && /^\d+$/.test(f[2]!)) return Number(f[2]);
  }
  return undefined;
}

function getent(db: 'passwd' | 'group', key: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('getent', [db, key], { timeout: 2000 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

export async function primaryGidOf(uid: number, opts: UserDbOptions = {}): Promise<number | undefined> {
  const fromFile = primaryGidFromPasswd(await readText(opts.passwdFile ?? '/etc/passwd'), uid);
  if (fromFile !== undefined || opts.getent === false) return fromFile;
  const out = await getent('passwd', String(uid));
  return out === undefined ? undefined : primaryGidFromPasswd(out, uid);
}

export async function groupId(name: string, opts: UserDbOptions = {}): Promise<number | undefined> {
  const fromFile = gidFromGroup(await readText(opts.groupFile ?? '/etc/group'), name);
  if (fromFile !== undefined || opts.getent === false) return fromFile;
  const out = await getent('group', name);
  return out === undefined ? undefined : gidFromGroup(out, name);
}


