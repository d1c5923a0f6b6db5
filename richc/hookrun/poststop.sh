# richc's poststop callback, as a runtime runs it when a container stops:
#
#     sh poststop.sh ROOT CLAIM PYTHON NAME [RUNTIME-ARGS...]
#
# (LXC appends "NAME lxc post-stop" to lxc.hook.post-stop; richc's runc keeper does the same.)
# LXC's monitor reports the container stopped only once this has exited, so `richc stop`
# and `lxc-stop` wait for it. In the usual case, a live `richc stop` holds the claim
# (richc/hookrun/claim.py) and runs the hooks itself, and this script exits here, after
# one read of the claim file and one of /proc: about 1 ms, against about 20 ms for
# starting python. Anything else, or any record it does not recognise, goes on to
# `python -m richc.hookrun`, which decides with the full rules.

set -f  # nothing here is a file pattern
root=$1 claim=$2 python=$3
shift 3

# An in-container reboot is not a stop: the monitor starts the init again.
[ "${LXC_TARGET:-}" = reboot ] && exit 0

# Whether process $1 is alive and started at clock tick $2 (field 22 of /proc/PID/stat),
# so a pid reused since the claim was taken does not count.
same_process() {
    want=$2
    case $1$2 in '' | *[!0-9]*) return 1 ;; esac
    IFS= read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
    # The command name (field 2) may hold spaces and parentheses: count from after its ")".
    # shellcheck disable=SC2086 # the fields are split on purpose
    set -- ${stat##*) }
    [ $# -ge 20 ] || return 1
    shift 19
    [ "$1" = "$want" ]
}

# claim.take and stages.poststop_once write these two shapes; json.dumps, one line.
record=
IFS= read -r record 2>/dev/null < "$claim"  # no newline at its end: read fails, but reads
case $record in
'{"status": "done", '*)
    exit 0 ;;  # this run's hooks have run already
'{"status": "running", "pid": '*', "start_time": '*'}')
    pid=${record#*\"pid\": }
    pid=${pid%%,*}
    started=${record#*\"start_time\": }
    started=${started%\}}
    same_process "$pid" "$started" && exit 0 ;;  # their owner is at work on them
esac
exec "$python" -I -m richc.hookrun --root "$root" --claim "$claim" poststop "$@"
