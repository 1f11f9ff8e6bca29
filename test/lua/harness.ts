/**
 * Runs the Flux job-shell plugin (etc/flux/shell/lua.d/nnf-env.lua) in a real Lua VM (wasmoon:
 * Lua 5.4 compiled to WebAssembly) with a stand-in for flux-shell's `plugin` and `shell` tables
 * that records every call. Files live in the VM's in-memory file system.
 *
 * Everything crossing between JS and Lua is hex-encoded, so values are compared byte for byte
 * and not through wasmoon's string conversions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LuaFactory } from 'wasmoon';
import { installedRoot, repoRoot } from '../helpers/paths.js';

export const PLUGIN_SOURCE_PATH = installedRoot ? join(installedRoot, 'etc', 'flux', 'shell', 'lua.d', 'nnf-env.lua') : join(repoRoot, 'etc', 'flux', 'shell', 'lua.d', 'nnf-env.lua');
const PLUGIN_VM_PATH = '/etc/flux/shell/lua.d/nnf-env.lua';

export interface ShellStandIn {
  /** The job environment shell.getenv() sees (FLUX_JOB_ID, NNF_ENV_JOBS_DIR, ...). */
  env?: Record<string, string>;
  /** shell.info: a table with these fields, or reading it raises an error. */
  info?: { jobid?: string | number; rank?: number } | 'throws';
  /** shell.setenv returns nil, "Invalid argument" for these names (as flux does on failure). */
  setenvFails?: string[];
  /** NNF_ENV_PLUGIN_CONFIG.jobs_dir (the plugin-level override). */
  jobsDir?: string;
  /**
   * Remove what Lua 5.1 lacks (math.type, utf8, table.unpack/move, string.pack/unpack) before
   * loading, so the 5.1/LuaJIT code paths run (the VM itself stays 5.4).
   */
  lua51Library?: boolean;
}

export interface ShellCall {
  kind: string;
  args: Buffer[];
}

export interface PluginRun {
  calls: ShellCall[];
  /** shell.setenv calls in order: name, value bytes, and type:value of the third argument. */
  setenv: Array<{ name: string; value: Buffer; overwrite: string }>;
  logs: string[];
  errors: string[];
  dies: string[];
  getenv: string[];
  /** `name` and topics the plugin registered. */
  registered: string[];
  topics: string[];
}

const hex = (b: Buffer | string): string => Buffer.from(b).toString('hex');
const luaStr = (s: Buffer | string): string => `unhex("${hex(s)}")`;

const PRELUDE = `
local function unhex(h) return (h:gsub("%x%x", function (x) return string.char(tonumber(x, 16)) end)) end
local function hex(s) return (s:gsub(".", function (c) return string.format("%02x", c:byte()) end)) end
`;

export class LuaPluginHarness {
  private constructor(private readonly factory: LuaFactory) {}

  static async create(pluginSource: Buffer = readFileSync(PLUGIN_SOURCE_PATH)): Promise<LuaPluginHarness> {
    const factory = new LuaFactory();
    await factory.mountFile(PLUGIN_VM_PATH, pluginSource);
    return new LuaPluginHarness(factory);
  }

  /** Put a file in the VM's file system (directories are created). */
  async writeFile(path: string, content: Buffer | string): Promise<void> {
    await this.factory.mountFile(path, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
  }

  async mkdir(path: string): Promise<void> {
    const module = await this.factory.getLuaModule();
    let current = '';
    for (const part of path.split('/').filter(Boolean)) {
      current += '/' + part;
      try {
        module.module.FS.mkdir(current);
      } catch {
        // exists
      }
    }
  }

  /** Run a Lua chunk in a fresh state; it must return a string. */
  async eval(chunk: string): Promise<string> {
    const engine = await this.factory.createEngine();
    try {
      const out: unknown = await engine.doString(PRELUDE + chunk);
      if (typeof out !== 'string') throw new Error(`Lua chunk returned ${typeof out}`);
      return out;
    } finally {
      engine.global.close();
    }
  }

  /** Load the plugin like flux-shell's initrc does and fire shell.init. */
  async run(standIn: ShellStandIn = {}): Promise<PluginRun> {
    const env = Object.entries(standIn.env ?? {}).map(([k, v]) => `env[${luaStr(k)}] = ${luaStr(v)}`).join('\n');
    const fails = (standIn.setenvFails ?? []).map((n) => `setenv_fails[${luaStr(n)}] = true`).join('\n');
    let info = '';
    if (standIn.info === 'throws') {
      info = `setmetatable(shell, { __index = function (_, k) if k == "info" then error("flux_shell_get_info: Invalid argument") end end })`;
    } else if (standIn.info) {
      const fields: string[] = [];
      if (typeof standIn.info.jobid === 'string') fields.push(`jobid = ${luaStr(standIn.info.jobid)}`);
      if (typeof standIn.info.jobid === 'number') fields.push(`jobid = ${standIn.info.jobid}`);
      if (standIn.info.rank !== undefined) fields.push(`rank = ${standIn.info.rank}`);
      info = `shell.info = { ${fields.join(', ')} }`;
    }
    const config = standIn.jobsDir === undefined ? 'nil' : `{ jobs_dir = ${luaStr(standIn.jobsDir)} }`;
    const out = await this.eval(`
local records = {}
local function record(kind, ...)
  local parts = { kind }
  for i = 1, select("#", ...) do parts[#parts + 1] = hex(tostring((select(i, ...)))) end
  records[#records + 1] = table.concat(parts, " ")
end
local env = {}
${env}
local setenv_fails = {}
${fails}
shell = {}
function shell.getenv(name)
  record("getenv", name)
  if name == nil then return env end
  return env[name]
end
function shell.setenv(name, value, overwrite)
  record("setenv", name, value, type(overwrite) .. ":" .. tostring(overwrite))
  if setenv_fails[name] then return nil, "Invalid argument" end
  env[name] = value
  return true
end
function shell.unsetenv(name) record("unsetenv", name); env[name] = nil; return true end
function shell.log(msg) record("log", msg) end
function shell.debug(msg) record("debug", msg) end
function shell.log_error(msg) record("log_error", msg) end
function shell.die(msg) record("die", msg); error("shell.die: " .. tostring(msg)) end
${info}
${standIn.lua51Library ? 'math.type = nil; utf8 = nil; table.unpack = nil; table.move = nil; string.pack = nil; string.unpack = nil' : ''}
local registered = {}
plugin = { register = function (spec) registered[#registered + 1] = spec end }
NNF_ENV_PLUGIN_CONFIG = ${config}
dofile("${PLUGIN_VM_PATH}")
for _, spec in ipairs(registered) do
  record("register", spec.name)
  for _, h in ipairs(spec.handlers) do
    record("topic", h.topic)
    if h.topic == "shell.init" then h.fn("shell.init") end
  end
end
return table.concat(records, "\\n")
`);
    const calls: ShellCall[] = out === '' ? [] : out.split('\n').map((line) => {
      const [kind, ...args] = line.split(' ');
      return { kind: kind!, args: args.map((a) => Buffer.from(a, 'hex')) };
    });
    const texts = (kind: string): string[] => calls.filter((c) => c.kind === kind).map((c) => c.args[0]!.toString('utf8'));
    return {
      calls,
      setenv: calls.filter((c) => c.kind === 'setenv').map((c) => ({
        name: c.args[0]!.toString('utf8'),
        value: c.args[1]!,
        overwrite: c.args[2]!.toString('utf8'),
      })),
      logs: texts('log'),
      errors: texts('log_error'),
      dies: texts('die'),
      getenv: texts('getenv'),
      registered: texts('register'),
      topics: texts('topic'),
    };
  }

  /**
   * Call one of the plugin's pure functions (exported through NNF_ENV_PLUGIN_CONFIG.internals)
   * for many argument strings at once; each result is the function's return values, as strings.
   */
  async callInternal(fn: string, inputs: Array<Buffer | string>): Promise<Array<Array<Buffer | null>>> {
    const out = await this.eval(`
plugin = { register = function () end }
shell = {}
NNF_ENV_PLUGIN_CONFIG = { export_internals = true }
dofile("${PLUGIN_VM_PATH}")
local f = NNF_ENV_PLUGIN_CONFIG.internals[${luaStr(fn)}]
local inputs = { ${inputs.map(luaStr).join(', ')} }
local lines = {}
local function pack(...) return { n = select("#", ...), ... } end
for i = 1, #inputs do
  local r = pack(f(inputs[i]))
  local parts = {}
  for k = 1, math.max(r.n, 1) do
    local v = r[k]
    parts[#parts + 1] = v == nil and "-" or ("=" .. hex(tostring(v)))
  end
  lines[#lines + 1] = table.concat(parts, " ")
end
return table.concat(lines, "\\n")
`);
    if (inputs.length === 0) return [];
    return out.split('\n').map((line) => line.split(' ').map((p) => (p === '-' ? null : Buffer.from(p.slice(1), 'hex'))));
  }
}
