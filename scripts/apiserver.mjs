#!/usr/bin/env node
/**
 * `npm run apiserver -- --kubeconfig-out FILE [--token-out FILE] [more flags] [-- kube-apiserver flags]`
 *
 * Builds the test API server if needed (scripts/apiserver-build.mjs), then runs it in the
 * foreground: the real kube-apiserver over an embedded etcd on 127.0.0.1 (TLS, ephemeral
 * port), with the project's CRDs (etc/kubernetes/crds) and RBAC example
 * (etc/kubernetes/nnf-env-rbac.yaml) installed. It prints one JSON line on stdout when ready
 * ({"event":"ready","url":...,"kubeconfig":...,"tokenFile":...,"controlUrl":...}) and stops
 * on SIGTERM or Ctrl-C. `--help` lists the server's own flags.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureApiserverBinary, GoMissingError } from './apiserver-build.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

let binary;
try {
  binary = await ensureApiserverBinary();
} catch (err) {
  process.stderr.write(`npm run apiserver: ${err.message}\n`);
  process.exit(err instanceof GoMissingError ? 3 : 1);
}

const defaults = [];
// The project's own definitions, unless the caller names others.
if (!args.some((a) => a === '--crds' || a.startsWith('--crds='))) defaults.push('--crds', join(repoRoot, 'etc', 'kubernetes', 'crds'));
if (!args.some((a) => a === '--apply' || a.startsWith('--apply='))) defaults.push('--apply', join(repoRoot, 'etc', 'kubernetes', 'nnf-env-rbac.yaml'));

const split = args.indexOf('--');
const own = split < 0 ? args : args.slice(0, split);
const passthrough = split < 0 ? [] : args.slice(split);
const child = spawn(binary, [...defaults, ...own, ...passthrough], { stdio: 'inherit' });
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => child.kill('SIGTERM'));
}
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
