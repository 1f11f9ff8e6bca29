/**
 * Test helper: run a small Node script in a private mount namespace (`unshare -m
 * --propagation private`), so it can bind-mount files and make directories read-only without
 * touching the host. Needs root and util-linux `unshare` (both present in CI).
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildRoot } from '../helpers/paths.js';

let cached: string | null | undefined;

/** Why mount namespaces cannot be used here, or null when they can. */
export function mountNamespaceUnavailable(): string | null {
  if (cached !== undefined) return cached;
  if (process.getuid?.() !== 0) return (cached = 'needs root (bind mounts); CI runs tests as root');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'mount', '--bind', '/', '/mnt'], { encoding: 'utf8' });
  if (r.error) return (cached = `unshare is not available (${r.error.message}); install util-linux`);
  if (r.status !== 0) return (cached = `unshare -m / mount --bind failed here: ${r.stderr.trim()}`);
  return (cached = null);
}

/** file:// URL of a module of this build (src/fs/<name>.js). */
export function builtModule(name: string): string {
  return pathToFileURL(join(buildRoot, 'src', 'fs', `${name}.js`)).href;
}

export interface ScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Environment for child node processes: without tap's NODE_OPTIONS hooks (process-info
 * tracking), which cost ~150 ms a start and are of no use to these short-lived scripts.
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** Write `source` (an ES module) into `dir` and run it with node inside a new mount namespace. */
export async function runInMountNamespace(dir: string, name: string, source: string, args: string[] = [], timeoutMs = 30_000): Promise<ScriptResult> {
  const script = join(dir, name);
  await writeFile(script, source);
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
