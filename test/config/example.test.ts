import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { renderExampleConfig } from '../../src/config/example.js';
import { CONFIG_KEYS, loadConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { repoRoot } from '../helpers/paths.js';

const committed = join(repoRoot, 'etc', 'nnf-env', 'nnf-env.conf');

t.test('etc/nnf-env/nnf-env.conf is exactly what renderExampleConfig() produces', async (t) => {
  const text = await readFile(committed, 'utf8');
  t.equal(text, renderExampleConfig(), 'regenerate: npm run build && node dist/src/config/example.js > etc/nnf-env/nnf-env.conf');
});

t.test('the example documents every key, commented out at its default', async (t) => {
  const text = renderExampleConfig();
  for (const key of CONFIG_KEYS) {
    t.match(text, new RegExp(`^#${key}=${SCHEMA[key].default.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), key);
  }
  t.notMatch(text, /^[A-Z]/m, 'no key is set');
  for (const line of text.split('\n')) t.ok(line.length <= 100, `short line: ${line.slice(0, 40)}`);
});

t.test('as a config file the example changes nothing, and uncommented it gives the defaults', async (t) => {
  const dir = t.testdir({});
  const asIs = join(dir, 'as-is.conf');
  await writeFile(asIs, renderExampleConfig());
  const loadedAsIs = await loadConfig({ configFile: asIs, env: {} });
  t.ok(CONFIG_KEYS.every((k) => loadedAsIs.sources[k].source === 'default'));
  const uncommented = join(dir, 'uncommented.conf');
  await writeFile(uncommented, renderExampleConfig().replace(/^#([A-Z][A-Z0-9_]*=)/gm, '$1'));
  const loaded = await loadConfig({ configFile: uncommented, env: {}, hostname: 'h' });
  const defaults = await loadConfig({ env: {}, defaultConfigFile: null, hostname: 'h' });
  t.same(loaded.config, defaults.config);
  t.ok(CONFIG_KEYS.every((k) => loaded.sources[k].source === 'file'), 'every key read from the file');
});
