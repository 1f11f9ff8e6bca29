/**
 * The commented example configuration, rendered from SCHEMA so that it documents every key
 * and never drifts from the code (test/config/example.test.ts compares it with the committed
 * etc/nnf-env/nnf-env.conf). Regenerate after changing the schema:
 *
 *   npm run build && node dist/src/config/example.js > etc/nnf-env/nnf-env.conf
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_FILE, ENV_PREFIX, SCHEMA } from './schema.js';
import type { ConfigKey, KeySpec } from './schema.js';
import { allowedFor } from './checks.js';
import { describeAllowed } from './values.js';

/** Section titles, each placed before the key that opens the section. */
const SECTIONS: Partial<Record<ConfigKey, string>> = {
  NODE_NAME: 'This node and its rabbit',
  RUNTIME_DIR: 'Files and the control socket',
  KUBE_CONNECTION: 'Kubernetes connection',
  DWS_API_VERSION: 'DWS',
  ENV_ALLOWED_PREFIXES: 'What reaches a job',
  PROBE_PORTS: 'Port probes',
  WATCH_TIMEOUT: 'Watches',
  PROLOG_TIMEOUT: 'Prolog and epilog',
  METRICS_RUNTIME_INTERVAL: 'Metrics',
  LOG_LEVEL: 'Logging',
};

const WIDTH = 96;

/** `text` as '# ' comment lines no wider than WIDTH. */
function comment(text: string): string[] {
  const out: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line.length + 1 + word.length > WIDTH && line !== '#') {
      out.push(line);
      line = '#';
    }
    line += ' ' + word;
  }
  if (line !== '#') out.push(line);
  return out;
}

export function renderExampleConfig(): string {
  const lines: string[] = [
    ...comment(`nnf-env configuration, read by nnf-envd and the nnf-env helper from ${DEFAULT_CONFIG_FILE}`
      + ` (or the file named by --config or ${ENV_PREFIX}CONFIG).`),
    ...comment('Format: dotenv, one KEY=value per line; # starts a comment; quote values with spaces.'),
    ...comment(`Every key can also be set in the environment as ${ENV_PREFIX}<KEY> and on the nnf-envd command line`
      + ' as --<key> in lower case with dashes (NODE_NAME: NNF_ENV_NODE_NAME, --node-name). Flags win over the'
      + ' environment, the environment over this file, this file over the built-in defaults.'),
    ...comment('Durations: 250ms, 30s, 5m, 1h, 1h30m, or a plain number of seconds. Booleans: true or false.'),
    ...comment('Every key below is commented out at its built-in default. `nnf-envd --print-config` shows the'
      + ' effective values and where each came from.'),
  ];
  for (const key of Object.keys(SCHEMA) as ConfigKey[]) {
    const spec: KeySpec = SCHEMA[key];
    const section = SECTIONS[key];
    if (section !== undefined) lines.push('', `# --- ${section}`);
    lines.push('', ...comment(spec.doc), ...comment(`Allowed: ${allowedFor(key, describeAllowed(spec))}.`), `#${key}=${spec.default}`);
  }
  return lines.join('\n') + '\n';
}

// `node dist/src/config/example.js` prints the example.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  process.stdout.write(renderExampleConfig());
}
