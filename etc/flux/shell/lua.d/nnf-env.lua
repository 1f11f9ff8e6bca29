-- nnf-env: set the DWS workflow variables (and nnf-env's per-node variables)
-- in the environment of every task of a Flux job, and tell the user about
-- problems nnf-envd recorded (workflow failed, variables rejected, ports of
-- the user container unreachable).
--
-- Installed as /etc/flux/shell/lua.d/nnf-env.lua; the default shell initrc
-- sources it and it runs as the job's user in "shell.init", on every node.
--
-- What it reads: <jobs dir>/<job id as f58plain>.env, written by nnf-envd
-- (format: docs/FORMATS.md "Env file"). No file means the job has no
-- workflow: nothing is done and nothing is logged (the cost is one failed
-- open). A bad line is reported with shell.log_error and skipped; nothing
-- here can fail the shell (everything runs under pcall).
--
-- Jobs dir: RUNTIME_DIR/jobs, RUNTIME_DIR as nnf-envd has it: from
-- NNF_ENV_RUNTIME_DIR, else from the RUNTIME_DIR line of nnf-envd's config
-- file (NNF_ENV_CONFIG, else /etc/nnf-env/nnf-env.conf), else /run/nnf-env.
-- NNF_ENV_JOBS_DIR in the job's environment, or NNF_ENV_PLUGIN_CONFIG.jobs_dir
-- (a global table a site initrc or a test may set before this file is
-- sourced; .config_file names another config file), override all of it.
--
-- Portable to Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT: no integer division, no
-- bitwise operators, no goto, no utf8 library, no string.pack, and no
-- arithmetic on 64-bit job ids (5.1/5.2/LuaJIT numbers are doubles, exact
-- only to 2^53): a decimal id is turned into base58 by long division on its
-- decimal digit string.

local DEFAULT_RUNTIME_DIR = "/run/nnf-env"
local DEFAULT_CONFIG_FILE = "/etc/nnf-env/nnf-env.conf"
-- A config file is small; anything larger is not one.
local MAX_CONFIG_BYTES = 1024 * 1024
-- nnf-envd caps env files far below this (ENV_MAX_TOTAL_BYTES <= 64 MiB).
local MAX_FILE_BYTES = 64 * 1024 * 1024 + 65536
-- Bad lines reported one by one before the rest are only counted.
local MAX_REPORTED_BAD_LINES = 10
local LOG_PREFIX = "nnf-env: "

local B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
local B58_MAX = "jpXCZedGfVQ"            -- 2^64-1 in base58 (11 digits)
local DEC_MAX = "18446744073709551615"   -- 2^64-1 in decimal (20 digits)
local FACT_PREFIX = "# nnf-env:"

local M = {}

-- Compare two digit strings of equal length, digit by digit, by their
-- position in `alphabet`. Returns true when a <= b. (Not `<=` on strings:
-- that uses strcoll and so the locale.)
local function digits_le(a, b, alphabet)
    for i = 1, #a do
        local x = alphabet:find(a:sub(i, i), 1, true)
        local y = alphabet:find(b:sub(i, i), 1, true)
        if x ~= y then return x < y end
    end
    return true
end

-- Decimal digit string (no leading zeros, value <= 2^64-1) -> base58 digits.
-- Repeated long division by 58: each step keeps a remainder below 58*10+10,
-- so every intermediate is a small exact number in any Lua.
function M.dec_to_b58(dec)
    if dec == "0" then return "1" end
    local out = {}
    local digits = dec
    while digits ~= "" do
        local quotient = {}
        local rem = 0
        for i = 1, #digits do
            local cur = rem * 10 + (digits:byte(i) - 48)
            local q = math.floor(cur / 58)
            rem = cur - q * 58
            if q > 0 or #quotient > 0 then
                quotient[#quotient + 1] = string.char(48 + q)
            end
        end
        out[#out + 1] = B58:sub(rem + 1, rem + 1)
        digits = table.concat(quotient)
    end
    local reversed = {}
    for i = #out, 1, -1 do reversed[#reversed + 1] = out[i] end
    return table.concat(reversed)
end

-- FLUX_JOB_ID (f58 with "ƒ" or "f", or decimal) -> f58plain, the name of the
-- job's files. Returns nil and a reason for anything else.
function M.jobid_to_f58plain(id)
    if type(id) ~= "string" then return nil, "no job id" end
    if #id > 256 then return nil, "job id too long" end
    id = id:match("^%s*(.-)%s*$")
    local digits
    if id:sub(1, 2) == "\198\146" then          -- U+0192 "ƒ" in UTF-8
        digits = id:sub(3)
    elseif id:sub(1, 1) == "f" then
        digits = id:sub(2)
    elseif id:match("^[0-9]+$") then
        local dec = id:match("^0*(.-)$")
        if dec == "" then dec = "0" end
        if #dec > #DEC_MAX or (#dec == #DEC_MAX and not digits_le(dec, DEC_MAX, "0123456789")) then
            return nil, "job id is larger than 2^64-1"
        end
        return "f" .. M.dec_to_b58(dec)
    else
        return nil, "job id is neither F58 nor decimal"
    end
    if digits == "" or not digits:match("^[1-9A-HJ-NP-Za-km-z]+$") then
        return nil, "job id has characters that are not base58"
    end
    -- Leading "1"s are zeros: re-encode canonically, as nnf-envd names files.
    digits = digits:match("^1*(.-)$")
    if digits == "" then digits = "1" end
    if #digits > #B58_MAX or (#digits == #B58_MAX and not digits_le(digits, B58_MAX, B58)) then
        return nil, "job id is larger than 2^64-1"
    end
    return "f" .. digits
end

-- Is s well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF)?
function M.is_utf8(s)
    if not s:find("[\128-\255]") then return true end
    local i, n = 1, #s
    while i <= n do
        local c = s:byte(i)
        if c < 128 then
            i = i + 1
        else
            local len, lo, hi
            if c >= 194 and c <= 223 then len, lo, hi = 2, 128, 191
            elseif c == 224 then len, lo, hi = 3, 160, 191
            elseif c == 237 then len, lo, hi = 3, 128, 159
            elseif c >= 225 and c <= 239 then len, lo, hi = 3, 128, 191
            elseif c == 240 then len, lo, hi = 4, 144, 191
            elseif c >= 241 and c <= 243 then len, lo, hi = 4, 128, 191
            elseif c == 244 then len, lo, hi = 4, 128, 143
            else return false end
            if i + len - 1 > n then return false end
            local c2 = s:byte(i + 1)
            if c2 < lo or c2 > hi then return false end
            for k = i + 2, i + len - 1 do
                local ck = s:byte(k)
                if ck < 128 or ck > 191 then return false end
            end
            i = i + len
        end
    end
    return true
end

-- One line of the env file (without its LF). Returns
--   "var", name, value | "fact", key, text | "skip" | nil, reason
-- The rules are those of parseEnvFileWithFacts in src/contract/env-file.ts.
function M.parse_line(line)
    if line == "" then return "skip" end
    if line:find("\0", 1, true) or line:find("[\1-\31\127]") or line:find("\194[\128-\159]") then
        return nil, "control character in line"
    end
    if not M.is_utf8(line) then return nil, "not valid UTF-8" end
    if line:sub(1, 1) == "#" then
        if line:sub(1, #FACT_PREFIX) == FACT_PREFIX then
            local key, text = line:sub(#FACT_PREFIX + 1):match("^([a-z][a-z0-9%-]*)=(.*)$")
            if key then return "fact", key, text end
        end
        return "skip"
    end
    local name, quoted = line:match("^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
    if not name then return nil, "not NAME='value', a # comment or empty" end
    local q = quoted:sub(1, 1)
    if #quoted < 2 or (q ~= "'" and q ~= '"') or quoted:sub(-1) ~= q then
        return nil, "value of " .. name .. " is not quoted as the format requires"
    end
    local value = quoted:sub(2, -2)
    if q == "'" then
        -- '...' holds no ' and does not end in \ (dotenv would misread it).
        if value:find("'", 1, true) or value:sub(-1) == "\\" then
            return nil, "value of " .. name .. " is not quoted as the format requires"
        end
    else
        -- "..." only for a value with a ', and never with " $ ` \ inside.
        if not value:find("'", 1, true) or value:find('["$`\\]') then
            return nil, "value of " .. name .. " is not quoted as the format requires"
        end
    end
    return "var", name, value
end

-- The whole file: every valid variable and fact, and the bad lines.
-- Returns vars (list of {name, value}), facts (list of {key, text}),
-- bad (list of {line, reason}).
function M.parse(content)
    local vars, facts, bad, seen = {}, {}, {}, {}
    local pos, lineno, len = 1, 0, #content
    while pos <= len do
        lineno = lineno + 1
        local nl = content:find("\n", pos, true)
        if not nl then
            bad[#bad + 1] = { lineno, "last line has no newline (truncated file?)" }
            break
        end
        local kind, a, b = M.parse_line(content:sub(pos, nl - 1))
        pos = nl + 1
        if kind == "var" then
            if seen[a] then
                bad[#bad + 1] = { lineno, a .. " appears again (first on line " .. seen[a] .. ")" }
            else
                seen[a] = lineno
                vars[#vars + 1] = { a, b }
            end
        elseif kind == "fact" then
            facts[#facts + 1] = { a, b }
        elseif kind == nil then
            bad[#bad + 1] = { lineno, a }
        end
    end
    return vars, facts, bad
end

local function log(msg)
    pcall(shell.log, LOG_PREFIX .. msg)
end

local function log_error(msg)
    pcall(shell.log_error, LOG_PREFIX .. msg)
end

local function plugin_config()
    if type(_G) ~= "table" then return {} end
    local conf = rawget(_G, "NNF_ENV_PLUGIN_CONFIG")
    if type(conf) ~= "table" then return {} end
    return conf
end

-- shell.info.jobid is a number: exact in 5.3+ (integer subtype), and in
-- 5.1/5.2/LuaJIT only up to 2^53, so it is a fallback for FLUX_JOB_ID only.
local function jobid_from_info()
    local ok, info = pcall(function () return shell.info end)
    if not ok or type(info) ~= "table" then return nil end
    local id = info.jobid
    if type(id) == "string" then return id end
    if type(id) ~= "number" or id < 0 or id ~= math.floor(id) then return nil end
    if math.type and math.type(id) == "integer" then return string.format("%d", id) end
    if id <= 9007199254740992 then return string.format("%.0f", id) end
    return nil
end

local function shell_rank()
    local ok, info = pcall(function () return shell.info end)
    if ok and type(info) == "table" and type(info.rank) == "number" then return info.rank end
    return nil
end

-- The value of KEY in a dotenv config file, as nnf-envd reads it (last line
-- wins; `export `, '...' / "..." quotes and trailing " #" comments allowed).
-- Returns value, or nil (no such line), or nil + message.
function M.config_value(content, key)
    local value
    for line in content:gmatch("[^\n]*") do
        line = line:match("^%s*(.-)%s*$")
        local k, rest = line:match("^export%s+([%w_]+)%s*=%s*(.*)$")
        if not k then k, rest = line:match("^([%w_]+)%s*=%s*(.*)$") end
        if k == key then
            local q = rest:sub(1, 1)
            if q == "'" or q == '"' then
                local v = rest:match("^" .. q .. "([^" .. q .. "]*)" .. q .. "%s*$")
                    or rest:match("^" .. q .. "([^" .. q .. "]*)" .. q .. "%s+#")
                if not v then return nil, key .. ": unterminated quote" end
                value = v
            else
                value = rest:gsub("%s+#.*$", ""):match("^(.-)%s*$")
            end
        end
    end
    return value
end

local function usable_dir(dir)
    return type(dir) == "string" and dir:sub(1, 1) == "/" and not dir:find("%c")
end

-- RUNTIME_DIR from nnf-envd's config file, or nil (no file, no line) + message.
local function runtime_dir_from_config(conf)
    local file = shell.getenv("NNF_ENV_CONFIG")
    if file == nil or file == "" then
        file = type(conf.config_file) == "string" and conf.config_file or DEFAULT_CONFIG_FILE
    end
    local f = io.open(file, "rb")
    if not f then return nil end              -- no config file: the default, as nnf-envd
    local content = f:read(MAX_CONFIG_BYTES)
    f:close()
    if content == nil then return nil end
    local dir, err = M.config_value(content, "RUNTIME_DIR")
    if err then return nil, file .. ": " .. err end
    if dir == nil or dir == "" then return nil end
    if not usable_dir(dir) then return nil, file .. ": RUNTIME_DIR is not an absolute path" end
    return dir
end

local function jobs_dir(conf)
    local dir = shell.getenv("NNF_ENV_JOBS_DIR")
    if dir ~= nil and dir ~= "" then
        if usable_dir(dir) then return dir end
        log_error("ignoring NNF_ENV_JOBS_DIR: not an absolute path")
    end
    if type(conf.jobs_dir) == "string" and conf.jobs_dir ~= "" then return conf.jobs_dir end
    local rd = shell.getenv("NNF_ENV_RUNTIME_DIR")
    if rd ~= nil and rd ~= "" then
        if usable_dir(rd) then return (rd:gsub("/+$", "")) .. "/jobs" end
        log_error("ignoring NNF_ENV_RUNTIME_DIR: not an absolute path")
    end
    local from_file, err = runtime_dir_from_config(conf)
    if err then log_error("ignoring " .. err) end
    return ((from_file or DEFAULT_RUNTIME_DIR):gsub("/+$", "")) .. "/jobs"
end

-- Returns content, or nil when there is no file, or nil + message.
local function read_file(path)
    local f, err, code = io.open(path, "rb")
    if not f then
        -- ENOENT is 2 on Linux; match the text too for other libcs/VMs.
        if code == 2 or (type(err) == "string" and err:find("No such file", 1, true)) then
            return nil
        end
        return nil, tostring(err)
    end
    local size = f:seek("end")
    if size and size > MAX_FILE_BYTES then
        f:close()
        return nil, path .. ": " .. size .. " bytes, larger than any file nnf-envd writes"
    end
    f:seek("set")
    local content = f:read("*a")
    f:close()
    if content == nil then return nil, path .. ": read failed" end
    return content
end

function M.run()
    local conf = plugin_config()
    local id = shell.getenv("FLUX_JOB_ID")
    if id == nil or id == "" then id = jobid_from_info() end
    if id == nil then return end                 -- not a job shell we understand
    local name, why = M.jobid_to_f58plain(id)
    if not name then
        log_error("cannot find this job's variables: FLUX_JOB_ID: " .. why)
        return
    end
    local path = jobs_dir(conf) .. "/" .. name .. ".env"
    local content, err = read_file(path)
    if not content then
        if err then log_error("cannot read " .. err .. "; the job runs without its workflow variables") end
        return
    end

    local vars, facts, bad = M.parse(content)
    for i, b in ipairs(bad) do
        if i > MAX_REPORTED_BAD_LINES then
            log_error(path .. ": " .. (#bad - MAX_REPORTED_BAD_LINES) .. " more bad lines skipped")
            break
        end
        log_error(path .. ":" .. b[1] .. ": " .. b[2] .. " (line skipped)")
    end
    for _, v in ipairs(vars) do
        -- The third argument must be a number: flux reads it with
        -- lua_tointeger, which makes `true` 0 (= do not overwrite).
        -- Failure is an error raised, or nil + message (flux's lua_pusherror).
        local ok, res, msg = pcall(shell.setenv, v[1], v[2], 1)
        if not ok or (res == nil and msg ~= nil) then
            log_error("cannot set " .. v[1] .. ": " .. tostring(ok and msg or res))
        end
    end

    local rank
    for _, fact in ipairs(facts) do
        local key, text = fact[1], fact[2]
        if key == "warning" then
            log(text)
        elseif key == "job-warning" then
            -- Job-wide: said once, by the first shell, not by every node.
            if rank == nil then rank = shell_rank() or 0 end
            if rank == 0 then log(text) end
        end
    end
end

-- Tests get at the pure functions through the config table.
do
    local conf = plugin_config()
    if conf.export_internals then conf.internals = M end
end

plugin.register {
    name = "nnf-env",
    handlers = {
        {
            topic = "shell.init",
            fn = function ()
                local ok, err = pcall(M.run)
                if not ok then log_error("internal error (job continues): " .. tostring(err)) end
            end
        }
    }
}

-- vi: ts=4 sw=4 expandtab
