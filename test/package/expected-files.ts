/** What the packages hold (test/package/): every file with its mode, directories aside. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

export const CONFIG = '/etc/nnf-env/nnf-env.conf';

export async function expectedFiles(): Promise<Record<string, number>> {
  const files: Record<string, number> = {
    '/usr/bin/nnf-env': 0o755,
    '/usr/sbin/nnf-envd': 0o755,
    '/usr/lib/nnf-env/nnf-env-commands.cjs': 0o644,
    '/usr/lib/nnf-env/nnf-env-main.cjs': 0o644,
    '/usr/lib/systemd/system/nnf-envd.service': 0o644,
    '/usr/libexec/nnf-env/flux-perilog': 0o755,
    '/usr/libexec/nnf-env/perilog-lib.sh': 0o644,
    '/etc/flux/system/prolog.d/nnf-env': 0o755,
    '/etc/flux/system/epilog.d/nnf-env': 0o755,
    '/etc/flux/shell/lua.d/nnf-env.lua': 0o644,
    [CONFIG]: 0o644,
    '/usr/share/nnf-env/nnf-env-rbac.yaml': 0o644,
    '/usr/share/nnf-env/flux-job-manager.toml': 0o644,
    '/usr/share/nnf-env/README.md': 0o644,
  };
  for (const crd of await readdir(join(repoRoot, 'etc', 'kubernetes', 'crds'))) files[`/usr/share/nnf-env/crds/${crd}`] = 0o644;
  return files;
}
