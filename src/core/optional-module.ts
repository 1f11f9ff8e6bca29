/**
 * Importing a module that a build may lack (a command whose owner has not shipped it yet, the
 * daemon): "this module is missing" is told apart from "something it imports is missing",
 * which is a broken installation and must keep its own error.
 */
import { fileURLToPath } from 'node:url';

/** Whether `err` says that the module at `url` itself is missing. */
export function isModuleMissing(err: unknown, url: URL): boolean {
  if ((err as { code?: unknown } | null)?.code !== 'ERR_MODULE_NOT_FOUND') return false;
  const reported = (err as { url?: unknown }).url;
  if (typeof reported === 'string') return reported === url.href;
  return String((err as Error).message).startsWith(`Cannot find module '${fileURLToPath(url)}'`);
}

/** The module at `url`, or null when that file does not exist. */
export async function importOptional<T>(url: URL): Promise<T | null> {
  try {
    return (await import(url.href)) as T;
  } catch (err) {
    if (isModuleMissing(err, url)) return null;
    throw err;
  }
}
