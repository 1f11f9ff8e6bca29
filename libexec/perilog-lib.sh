# nnf-env: shell functions of the Flux prolog.d and epilog.d scripts (sourced by them, never
# run; installed as <prefix>/libexec/nnf-env/perilog-lib.sh, the path the scripts name). What
# both read the same way lives here once. Each function returns 1 where it cannot be certain;
# the script then takes its Node path (`nnf-env prolog|epilog`), which decides with the full
# configuration loader. No process is started: these run on every node for every job.
# Variables set: rd, name, and the scratch _nnf_conf, _nnf_line.

# rd=RUNTIME_DIR (absolute, no trailing /) from NNF_ENV_RUNTIME_DIR, else the config file
# (NNF_ENV_CONFIG or /etc/nnf-env/nnf-env.conf), else the default /run/nnf-env, as nnf-env
# reads it. Unsure (1): a config named but missing or unreadable, a line that may set the key
# and is not plainly RUNTIME_DIR=/absolute/path, the key set twice, or characters a path of
# ours never has.
nnf_env_runtime_dir() {
    if [ -n "${NNF_ENV_RUNTIME_DIR+set}" ]; then
        rd=$NNF_ENV_RUNTIME_DIR
    else
        _nnf_conf=${NNF_ENV_CONFIG:-/etc/nnf-env/nnf-env.conf}
        if [ ! -e "$_nnf_conf" ]; then
            [ -n "$NNF_ENV_CONFIG" ] && return 1   # named but missing: nnf-env reports it
            rd=/run/nnf-env
        else
            [ -r "$_nnf_conf" ] || return 1
            # One grep, not a read loop: sh's read costs a system call per byte of the file.
            _nnf_line=$(grep -E '^[^#]*RUNTIME_DIR[[:space:]]*=' "$_nnf_conf")
            case $? in
                0) ;;
                1) _nnf_line= ;;
                *) return 1 ;;
            esac
            case $_nnf_line in
                *'
'*) return 1 ;;
                '') rd=/run/nnf-env ;;
                RUNTIME_DIR=/*) rd=${_nnf_line#RUNTIME_DIR=} ;;
                *) return 1 ;;
            esac
        fi
    fi
    case $rd in
        /*) ;;
        *) return 1 ;;
    esac
    case $rd in
        *[!A-Za-z0-9/._-]*) return 1 ;;
    esac
    rd=${rd%/}
}

# name=the f58plain form of FLUX_JOB_ID, which names the job's files and spool entries.
# perilog.c sets FLUX_JOB_ID in F58 (`ƒ`, or `f` with FLUX_F58_FORCE_ASCII): the same digits
# after an ASCII `f`. Unsure (1): anything but canonical base58 of a 64-bit id.
nnf_env_job_name() {
    case ${FLUX_JOB_ID-} in
        ƒ?*) name=f${FLUX_JOB_ID#ƒ} ;;
        f?*) name=$FLUX_JOB_ID ;;
        *) return 1 ;;
    esac
    case $name in
        f1* | f*[!1-9A-HJ-NP-Za-km-z]* | f????????????*) return 1 ;;
    esac
}
:
