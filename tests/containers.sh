#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The container recipes of docs/containers.md, reproduced without Docker:
# every "container" has its own PID, IPC, mount, network and UTS
# namespaces (unshare), a private read-only /dev/shm of 4 KiB, a private
# /run with the shared channel folder bind-mounted on /run/bips
# (BIPS_DIR=/run/bips), an empty environment, a uid, gid and supplementary
# groups of its own (setpriv) and, for the rootless recipes, a user
# namespace of its own (unshare --user --map-root-user, as rootless Podman
# does). The rest of the file system stays visible (the build tree must
# be); nothing of bips lives there.
#
# Usage: tests/containers.sh [BUILD_DIR]   (default: build/ of this tree;
# a build without sanitizers: gst-launch-1.0 loads its plugin). Needs root
# (namespaces, mounts, other uids). Prints one line per recipe (PASS, FAIL
# or SKIP with the missing capability), then a summary; exits 1 on any
# failure (2 when BUILD_DIR does not exist), 77 when a capability that
# every recipe needs is missing. Takes about 15 s.
set -uo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${BUILD_DIR:-$src/build}}"
build="$(cd "$build" 2>/dev/null && pwd)" || { echo "FAIL: no build tree at ${1:-${BUILD_DIR:-$src/build}}"; exit 2; }
bips_tool="$build/tools/bips/bips"
t_start=$(date +%s%N)

skip_all() { echo "SKIP: $*"; exit 77; }
((EUID == 0)) || skip_all "needs root (namespaces, mounts and other uids)"
for tool in unshare setpriv gst-launch-1.0 gst-inspect-1.0 sha256sum findmnt; do
  command -v "$tool" >/dev/null || skip_all "$tool is not installed"
done
[[ -f "$build/gst/libgstbips.so" ]] || skip_all "$build/gst/libgstbips.so is missing (plugin not built)"
[[ -x "$bips_tool" ]] || skip_all "$bips_tool is missing"
[[ -x /usr/bin/python3 ]] || skip_all "/usr/bin/python3 is missing (it reads bips info --json)"
unshare --pid --fork --kill-child --mount-proc --ipc --mount --net --uts true 2>/dev/null ||
  skip_all "cannot create PID, IPC, mount and network namespaces (unshare --pid --ipc --mount --net failed)"
# The script itself runs as PID 1 of a PID namespace of its own, in a
# private mount namespace: whatever kills it (even SIGKILL, to it or to the
# unshare above it) takes every container and every mount with it.
if [[ -z ${BIPS_CONTAINERS_INNER:-} ]]; then
  exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc -- \
    env BIPS_CONTAINERS_INNER=1 "$BASH" "${BASH_SOURCE[0]}" "$build"
fi

# ---------------------------------------------------------------- set-up

tmp="$(mktemp -d /tmp/bips-containers.XXXXXX)"
# A tmpfs of this mount namespace: it goes with the script, however it ends.
mount -t tmpfs -o size=256m,mode=0711 bips-containers "$tmp" # other uids reach their folders in it
vol="$tmp/volume"                # the one thing the containers share
ref="$tmp/reference.raw"
ctr_pids=()                      # unshare (or setpriv -> unshare) processes
ctr_inits=()                     # their namespaces' PID 1, as seen from here
n_pass=0 n_fail=0 n_skip=0

# True if PID is alive and a child of PARENT (PIDs are only ever killed
# when they are still ours).
child_of() { # PID PARENT
  [[ -n $1 && "$(awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null)" == "$2" ]]
}

# ctr_kill SIGNAL INIT CTR: a signal to PID 1 of a container, from here
# (as docker stop and docker kill send it).
ctr_kill() {
  child_of "$2" "$3" && kill -s "$1" "$2" 2>/dev/null
}

cleanup() {
  local i p
  # PID 1 of a namespace takes every process of that namespace with it.
  for i in "${!ctr_pids[@]}"; do
    p=${ctr_pids[$i]}
    child_of "${ctr_inits[$i]}" "$p" && kill -KILL "${ctr_inits[$i]}" 2>/dev/null
    child_of "$p" $$ && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  ctr_pids=() ctr_inits=()
}
final_cleanup() {
  cleanup
  umount -R "$tmp" 2>/dev/null
  rmdir "$tmp"
}
trap final_cleanup EXIT
trap 'exit 130' INT TERM HUP

# Numeric ids that nobody on this machine uses: A produces, B consumes
# (both in group G), C is in no shared group.
free_id() {
  local db=$1 id=$2
  while getent "$db" "$id" >/dev/null; do id=$((id + 1)); done
  echo "$id"
}
G=$(free_id group 47100)
A=$(free_id passwd 47101)
B=$(free_id passwd $((A + 1)))
C=$(free_id passwd $((B + 1)))

caps="video/x-raw,format=RGBA,width=320,height=240,framerate=30/1"
frames=30
frame_bytes=$((320 * 240 * 4))

# What every container gets: an empty environment but for these
# (env -i ...; HOME is a folder of the container's uid).
# A container's PID 1 starts with every signal at its default action; a
# job started with & by this script would inherit SIGINT and SIGQUIT
# ignored, hence env --default-signal.
env_of() { # HOME -> the array env_cmd
  env_cmd=(env -i "${env_signals[@]}" PATH=/usr/local/bin:/usr/bin:/bin "HOME=$1" LANG=C.UTF-8 BIPS_DIR=/run/bips
    "GST_PLUGIN_PATH_1_0=$build/gst" "GST_REGISTRY_1_0=$1/registry.bin"
    "LD_LIBRARY_PATH=$build/lib/gobject:$build/lib" "GI_TYPELIB_PATH=$build/lib/gobject"
    "PYTHONPATH=$src/python" PYTHONDONTWRITEBYTECODE=1)
}

env_signals=(--default-signal)
env --default-signal true 2>/dev/null || {
  env_signals=()
  echo "# note: env has no --default-signal: containers start with SIGINT and SIGQUIT ignored"
}

# One registry built here, copied into each uid's home (a uid whose
# registry cannot be written would rescan the plugins at every start).
GST_PLUGIN_PATH_1_0="$build/gst" GST_REGISTRY_1_0="$tmp/registry.bin" \
  gst-inspect-1.0 bipssink >/dev/null 2>&1 || skip_all "GStreamer cannot load $build/gst/libgstbips.so"
for u in 0 "$A" "$B" "$C"; do
  mkdir -p "$tmp/home-$u"
  cp "$tmp/registry.bin" "$tmp/home-$u/"
  chown -R "$u:$u" "$tmp/home-$u"
  chmod 0700 "$tmp/home-$u"
done

# The reference: the frames the producers send, made here, once.
gst-launch-1.0 -q videotestsrc num-buffers=$frames pattern=ball ! "$caps" \
  ! filesink location="$ref" >/dev/null 2>&1
ref_sum=$(sha256sum <"$ref" | cut -d' ' -f1)
(($(stat -c %s "$ref") == frames * frame_bytes)) || skip_all "videotestsrc did not make the reference frames"

# The volume: a fresh tmpfs for each recipe, made as
# `docker volume create --opt type=tmpfs --opt device=tmpfs
# --opt o=size=1m,mode=2775,gid=G` makes it (setgid: the sockets made in
# it get group G).
mkdir "$vol"
reset_volume() {
  local mode=${1:-2775}
  umount "$vol" 2>/dev/null
  mount -t tmpfs -o "size=1m,mode=$mode,gid=$G" bips-test-volume "$vol"
}

# In the new namespaces, as root of them: a private, read-only, 4 KiB
# /dev/shm (any use of it would fail), a private /run with the volume on
# /run/bips, then the command. $0 is the volume.
ctr_setup='set -e
mount -t tmpfs -o ro,size=4k,mode=1777 ctr-shm /dev/shm
mount -t tmpfs -o size=1m,mode=0755 ctr-run /run
mkdir /run/bips
mount --bind "$0" /run/bips
exec "$@"'

# ctr_start LOG USER MODE INIT -- COMMAND...
#   USER: uid:gid:groups (groups comma-separated, empty for none)
#   MODE: rootful (the runtime is root, the command runs as USER) or
#         rootless (USER makes a user namespace and is root in it)
#   INIT: none (COMMAND is PID 1) or tini (docker run --init)
# Sets ctr_pid (to wait for) and ctr_init (PID 1 of the namespace, in ours).
ctr_start() {
  local log=$1 user=$2 mode=$3 init=$4
  shift 5
  local uid gid groups
  IFS=: read -r uid gid groups <<<"$user"
  local gopt=(--clear-groups)
  [[ -n $groups ]] && gopt=(--groups "$groups")
  local env_cmd
  env_of "$tmp/home-$uid"
  local init_cmd=()
  [[ $init == tini ]] && init_cmd=(tini --)
  local ns=(unshare --pid --fork --kill-child --mount-proc --ipc --mount --net --uts)
  if [[ $mode == rootless ]]; then
    setpriv --reuid="$uid" --regid="$gid" "${gopt[@]}" -- \
      "${ns[@]}" --user --map-root-user -- \
      bash -c "$ctr_setup" "$vol" "${env_cmd[@]}" "${init_cmd[@]}" "$@" >"$log" 2>&1 &
  else
    # --pdeathsig again after the change of uid, which clears unshare's
    # --kill-child: the container dies with its unshare whatever happens.
    "${ns[@]}" -- bash -c "$ctr_setup" "$vol" \
      setpriv --reuid="$uid" --regid="$gid" "${gopt[@]}" --pdeathsig KILL -- \
      "${env_cmd[@]}" "${init_cmd[@]}" "$@" >"$log" 2>&1 &
  fi
  ctr_pid=$!
  ctr_init=""
  local i
  for i in $(seq 200); do
    ctr_init=$(cat "/proc/$ctr_pid/task/$ctr_pid/children" 2>/dev/null)
    ctr_init=${ctr_init%% *}
    [[ -n $ctr_init ]] && break
    kill -0 "$ctr_pid" 2>/dev/null || break
    sleep 0.01
  done
  ctr_pids+=("$ctr_pid")
  ctr_inits+=("$ctr_init")
}

# ctr_wait PID SECONDS: the exit status of a container, or 124 after
# SECONDS (then its namespace is killed).
ctr_wait() {
  local pid=$1 limit=$(($2 * 20)) i
  for ((i = 0; i < limit; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if child_of "$pid" $$; then
    local c
    c=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)
    c=${c%% *}
    child_of "$c" "$pid" && kill -KILL "$c" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid"
}

wait_for_socket() { # NAME SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    [[ -S "$vol/bips-$1" ]] && return 0
    sleep 0.05
  done
  return 1
}

volume_empty() { [[ -z "$(ls -A "$vol")" ]]; }

# Consumers of a channel, asked from here (bips info --json).
consumer_count() { # CHANNEL
  BIPS_DIR="$vol" "$bips_tool" info --json "$1" 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["channel"]["consumers"]))' 2>/dev/null
}

# Each recipe sets `why` (the reason of a FAIL, or a note for a PASS)
# and returns 0 (PASS), 1 (FAIL) or 77 (SKIP).
why=""
logs=()
fail() { why="$*"; return 1; }

# The producer of the byte-exact recipes: the reference frames, as fast
# as the consumer takes them, once a consumer is there.
producer_cmd() { # CHANNEL PERMS -> the array prod_cmd
  prod_cmd=(gst-launch-1.0 --no-fault videotestsrc "num-buffers=$frames" pattern=ball ! "$caps"
    ! bipssink channel="$1" perms="$2" wait-for-consumer=true sync=false)
}

# A producer and a gst consumer; the consumer's frames must be the
# reference, byte for byte, and nothing may be left afterwards.
byte_exact() { # NAME PRODUCER_USER CONSUMER_USER MODE PERMS EXPECT_MODE EXPECT_OWNER
  local name=$1 puser=$2 cuser=$3 mode=$4 perms=$5 want_mode=$6 want_owner=$7
  local ch="bx-$name" out="$tmp/home-${cuser%%:*}/$name.raw"
  logs=("$tmp/$name-producer.log" "$tmp/$name-consumer.log")
  local prod_cmd
  producer_cmd "$ch" "$perms"
  ctr_start "${logs[0]}" "$puser" "$mode" none -- "${prod_cmd[@]}"
  local prod=$ctr_pid
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  local seen
  seen=$(stat -c '%a %u:%g' "$vol/bips-$ch")
  ctr_start "${logs[1]}" "$cuser" "$mode" none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=lossless timeout=20000 reconnect=false ! filesink location="$out"
  local cons=$ctr_pid
  ctr_wait "$cons" 30; local cs=$?
  ((cs == 0)) || fail "consumer exited with $cs" || return
  ctr_wait "$prod" 10; local ps=$?
  ((ps == 0)) || fail "producer exited with $ps" || return
  [[ "$seen" == "$want_mode $want_owner" ]] ||
    fail "socket was mode/owner '$seen', expected '$want_mode $want_owner'" || return
  local sum size
  size=$(stat -c %s "$out")
  sum=$(sha256sum <"$out" | cut -d' ' -f1)
  [[ "$sum" == "$ref_sum" ]] ||
    fail "frames differ from the reference ($size bytes, sha256 $sum)" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="$frames frames ($((size / 1024)) KiB) byte-exact, socket $seen, nothing left"
}

# ---------------------------------------------------------------- recipes

# What a container here is: PID 1 of its own PID namespace, its own IPC
# namespace, an empty read-only /dev/shm, its uid and groups, the volume
# on /run/bips; rootless ones also in a user namespace of their own.
recipe_isolation() {
  reset_volume 2775
  logs=("$tmp/isolation-rootful.log" "$tmp/isolation-rootless.log")
  local probe='echo "pid $$"; echo "ids $(id -u) $(id -G)"
echo "ns $(readlink /proc/self/ns/pid) $(readlink /proc/self/ns/ipc) $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/user) $(readlink /proc/self/ns/net)"
echo "shm $(df -k --output=size /dev/shm | tail -n1 | tr -d " ")k $( (: >/dev/shm/probe) 2>/dev/null && echo writable || echo read-only) files=$(ls -A /dev/shm | wc -l)"
echo "bips $BIPS_DIR $(findmnt -no FSTYPE /run/bips) $(stat -c %a /run/bips)"'
  ctr_start "${logs[0]}" "$B:$B:$G" rootful none -- sh -c "$probe"
  ctr_wait "$ctr_pid" 10 || fail "the rootful probe failed: $(cat "${logs[0]}")" || return
  local host_ns
  host_ns="$(readlink /proc/self/ns/pid) $(readlink /proc/self/ns/ipc) $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/user) $(readlink /proc/self/ns/net)"
  local f
  for f in "${logs[@]}"; do
    [[ $f == "${logs[1]}" ]] && {
      userns_ok || { why="rootful only (no user namespaces): $(tr '\n' ' ' <"${logs[0]}")"; return 0; }
      ctr_start "${logs[1]}" "$B:$B:$G" rootless none -- sh -c "$probe"
      ctr_wait "$ctr_pid" 10 || fail "the rootless probe failed: $(cat "${logs[1]}")" || return
    }
    grep -qx "pid 1" "$f" || fail "$(basename "$f"): the command is not PID 1" || return
    grep -qx "shm 4k read-only files=0" "$f" || fail "$(basename "$f"): /dev/shm is not the private one: $(grep ^shm "$f")" || return
    grep -q "^bips /run/bips tmpfs 2775$" "$f" || fail "$(basename "$f"): /run/bips is not the volume: $(grep ^bips "$f")" || return
    local ns
    read -r -a ns <<<"$(grep ^ns "$f" | cut -d' ' -f2-)"
    local -a hns
    read -r -a hns <<<"$host_ns"
    [[ ${ns[0]} != "${hns[0]}" && ${ns[1]} != "${hns[1]}" && ${ns[2]} != "${hns[2]}" && ${ns[4]} != "${hns[4]}" ]] ||
      fail "$(basename "$f"): PID, IPC, mount or network namespace is the host's" || return
  done
  grep -qx "ids $B $B $G" "${logs[0]}" || fail "rootful: ids are $(grep ^ids "${logs[0]}")" || return
  grep -q "^ids 0 " "${logs[1]}" || fail "rootless: not root in its user namespace: $(grep ^ids "${logs[1]}")" || return
  [[ "$(grep ^ns "${logs[1]}" | cut -d' ' -f5)" != "$(readlink /proc/self/ns/user)" ]] ||
    fail "rootless: the user namespace is the host's" || return
  why="PID 1, own PID/IPC/mount/network namespaces, /dev/shm private (ro, 4 KiB, empty), volume on /run/bips; uid $B groups $B,$G; rootless: root of its own user namespace"
}

recipe_same_uid() {
  reset_volume 2775
  byte_exact same-uid 0:0: 0:0: rootful 0600 600 "0:$G"
}

recipe_group_0660() {
  reset_volume 2775
  byte_exact group-0660 "$A:$A:$G" "$B:$B:$G" rootful 0660 660 "$A:$G"
}

recipe_python_consumer() {
  /usr/bin/python3 -c 'import numpy, gi' 2>/dev/null || { why="/usr/bin/python3 lacks numpy or gi (python3-numpy, python3-gi)"; return 77; }
  [[ -f "$build/lib/gobject/Bips-1.0.typelib" ]] || { why="no Bips-1.0.typelib in $build (introspection disabled)"; return 77; }
  reset_volume 2775
  local ch=py-chan
  logs=("$tmp/python-producer.log" "$tmp/python-consumer.log")
  local prod_cmd
  producer_cmd "$ch" 0660
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- "${prod_cmd[@]}"
  local prod=$ctr_pid
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- /usr/bin/python3 -c '
import hashlib, sys, bips
h, n = hashlib.sha256(), 0
with bips.Consumer(sys.argv[1], policy="lossless", timeout=20) as consumer:
    for frame in consumer.frames(timeout=20):
        assert frame.array.shape == (240, 320, 4), frame.array.shape
        h.update(frame.data)
        n += 1
print("frames", n, h.hexdigest())' "$ch"
  local cons=$ctr_pid
  ctr_wait "$cons" 30; local cs=$?
  ((cs == 0)) || fail "python consumer exited with $cs" || return
  ctr_wait "$prod" 10; local ps=$?
  ((ps == 0)) || fail "producer exited with $ps" || return
  grep -q "^frames $frames $ref_sum\$" "${logs[1]}" ||
    fail "python consumer saw: $(grep ^frames "${logs[1]}")" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="bips.Consumer as uid $B: $frames frames byte-exact, nothing left"
}

recipe_info_across_pid_namespaces() {
  reset_volume 2775
  local ch=info-chan
  logs=("$tmp/info-producer.log" "$tmp/info-consumer.log" "$tmp/info-inspector.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault -e videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=latest reconnect=false ! fakesink
  local cons=$ctr_pid cons_host=$ctr_init
  local i consumers=0
  for i in $(seq 100); do
    consumers=$(consumer_count "$ch")
    [[ "$consumers" == 1 ]] && break
    sleep 0.05
  done
  [[ "$consumers" == 1 ]] || fail "the consumer never showed up in bips info" || return
  # A third container (uid B, group G, its own PID namespace) reads both.
  ctr_start "${logs[2]}" "$B:$B:$G" rootful none -- bash -c \
    'bips=$0; "$bips" list --json; echo "list-status $?"; "$bips" info --json "$1"; echo "info-status $?"' \
    "$bips_tool" "$ch"
  ctr_wait "$ctr_pid" 20; local is=$?
  ((is == 0)) || fail "inspector container exited with $is" || return
  grep -q '^list-status 0$' "${logs[2]}" || fail "bips list failed in the inspector container" || return
  grep -q '^info-status 0$' "${logs[2]}" || fail "bips info failed in the inspector container" || return
  local pids
  pids=$(sed -n '/^list-status/,/^info-status/p' "${logs[2]}" | sed '1d;$d' | /usr/bin/python3 -c '
import json, sys
ch = json.load(sys.stdin)["channel"]
print(ch["producer_pid"], ",".join(str(c["pid"]) for c in ch["consumers"]), ch["socket_path"],
      ch["producer_other_pid_namespace"], ",".join(str(c["other_pid_namespace"]) for c in ch["consumers"]))') ||
    fail "cannot read bips info --json: $(cat "${logs[2]}")" || return
  local ppid cpids path pother cother
  read -r ppid cpids path pother cother <<<"$pids"
  [[ "$ppid" == 1 && "$cpids" == 1 ]] ||
    fail "expected producer_pid 1 and consumer pid 1 (each PID 1 of its namespace), got $ppid and $cpids" || return
  [[ "$pother" == True && "$cother" == True ]] ||
    fail "the inspector's bips info does not mark the PIDs as from other namespaces ($pother, $cother)" || return
  # From here (the host's namespace) the kernel names the producer's PID.
  local here
  here=$(BIPS_DIR="$vol" "$bips_tool" info --json "$ch" | /usr/bin/python3 -c '
import json, sys
ch = json.load(sys.stdin)["channel"]
print(ch["producer_local_pid"], ch["producer_other_pid_namespace"])') ||
    fail "cannot read bips info --json from the host" || return
  [[ "$here" == "$prod_host True" ]] ||
    fail "from the host, expected producer_local_pid $prod_host in another namespace, got: $here" || return
  local text
  text=$(BIPS_DIR="$vol" "$bips_tool" info "$ch") &&
    grep -q "pid 1 (other PID namespace, $prod_host here)" <<<"$text" ||
    fail "bips info does not say 'pid 1 (other PID namespace, $prod_host here)'" || return
  [[ "$path" == /run/bips/bips-$ch ]] || fail "socket_path is $path, expected /run/bips/bips-$ch" || return
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10; local ps=$?
  ctr_wait "$cons" 10
  ((ps == 0)) || fail "producer exited with $ps after SIGINT" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="from a third PID namespace: producer_pid=1 and consumer pid=1, both marked as other namespaces (PIDs $prod_host and $cons_host outside, the producer's shown from here), socket_path $path"
}

# A uid outside the group. mode 2775: it sees the socket and may not connect.
recipe_denied_third_uid() {
  reset_volume 2775
  local ch=denied-chan
  logs=("$tmp/denied-producer.log" "$tmp/denied-gst.log" "$tmp/denied-tool.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  local t0
  t0=$(date +%s%N)
  ctr_start "${logs[1]}" "$C:$C:" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    timeout=10000 ! fakesink
  ctr_wait "$ctr_pid" 20; local cs=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  ctr_start "${logs[2]}" "$C:$C:" rootful none -- "$bips_tool" info "$ch"
  ctr_wait "$ctr_pid" 20; local is=$?
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10
  ((cs != 0)) || fail "uid $C attached to a 0660 channel of group $G" || return
  ((ms < 5000)) || fail "the refusal took $ms ms (bipssrc waited instead of failing)" || return
  ((is == 1)) || fail "bips info exited with $is, expected 1" || return
  local msg="no permission to connect to channel '$ch'"
  grep -q "$msg" "${logs[1]}" || fail "bipssrc's error does not say \"$msg\": $(grep ERROR "${logs[1]}" | head -1)" || return
  grep -q "$msg" "${logs[2]}" || fail "bips info does not say \"$msg\": $(cat "${logs[2]}")" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="uid $C refused in $ms ms: $(grep -o "no permission to connect.*mode 0660)" "${logs[1]}" | head -1)"
}

# The same with mode 2770: the outsider cannot even look into the folder.
recipe_denied_closed_dir() {
  reset_volume 2770
  local ch=closed-chan
  logs=("$tmp/closed-producer.log" "$tmp/closed-gst.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  local t0
  t0=$(date +%s%N)
  ctr_start "${logs[1]}" "$C:$C:" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    timeout=10000 ! fakesink
  ctr_wait "$ctr_pid" 20; local cs=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10
  ((cs != 0)) || fail "uid $C attached through a 2770 folder of group $G" || return
  ((ms < 5000)) || fail "the refusal took $ms ms" || return
  local err
  err=$(grep -m1 "^ERROR: from element" "${logs[1]}" | sed 's/^ERROR: from element [^ ]*: //')
  grep -qi "permission" <<<"$err" || fail "the error does not mention permission: $err" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="uid $C refused in $ms ms: $err"
}

# docker stop without --init: SIGTERM to a gst-launch producer that is
# PID 1 of its namespace, from the parent namespace, then SIGKILL after a
# grace period (docker's is 10 s, 3 s here).
recipe_pid1_sigterm() {
  reset_volume 2775
  local ch=pid1-chan
  logs=("$tmp/pid1-producer.log" "$tmp/pid1-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- gst-launch-1.0 --no-fault -v bipssrc channel="$ch" \
    policy=latest reconnect=false ! fakesink silent=false
  local cons=$ctr_pid
  local i
  for i in $(seq 100); do
    (($(grep -c "last-message = chain" "${logs[1]}") > 3)) && break
    sleep 0.05
  done
  (($(grep -c "last-message = chain" "${logs[1]}") > 3)) || fail "the consumer got no frames" || return
  [[ "$(awk '/^NSpid/ {print $NF}' "/proc/$prod_host/status")" == 1 ]] ||
    fail "the producer is not PID 1 of its namespace" || return
  local sigcgt
  sigcgt=$(awk '/^SigCgt/ {print $2}' "/proc/$prod_host/status")
  local t0 gone_ms="" exit_ms=""
  t0=$(date +%s%N)
  ctr_kill TERM "$prod_host" "$prod"
  for i in $(seq 60); do
    [[ -z $gone_ms && ! -e "$vol/bips-$ch" ]] && gone_ms=$((($(date +%s%N) - t0) / 1000000))
    if ! kill -0 "$prod" 2>/dev/null; then
      exit_ms=$((($(date +%s%N) - t0) / 1000000))
      break
    fi
    sleep 0.05
  done
  local before after how
  before=$(grep -c "last-message = chain" "${logs[1]}")
  sleep 0.5
  after=$(grep -c "last-message = chain" "${logs[1]}")
  if [[ -z $exit_ms ]]; then
    how="PID 1 did not exit on SIGTERM (still serving: consumer frames $before -> $after in 0.5 s); SIGKILL after 3 s"
    ctr_kill KILL "$prod_host" "$prod"
  else
    how="PID 1 exited on SIGTERM after $exit_ms ms"
  fi
  ctr_wait "$prod" 10
  ctr_wait "$cons" 10; local cs=$?
  [[ -n $gone_ms ]] || fail "the channel's name stayed after SIGTERM ($how)" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol") ($how)" || return
  ((cs != 124)) || fail "the consumer did not notice that its producer went" || return
  grep -q "is gone" "${logs[1]}" || fail "the consumer did not report the producer gone ($how)" || return
  why="name removed $gone_ms ms after SIGTERM; $how; nothing left; consumer saw the producer go (SigCgt $sigcgt)"
}

# docker run --stop-signal=SIGINT with gst-launch-1.0 -e, still PID 1:
# gst-launch handles SIGINT, sends EOS, the consumer ends cleanly.
recipe_pid1_sigint() {
  reset_volume 2775
  local ch=sigint-chan out="$tmp/home-$B/sigint.raw"
  logs=("$tmp/sigint-producer.log" "$tmp/sigint-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault -e videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=lossless reconnect=false ! filesink location="$out"
  local cons=$ctr_pid
  local i
  for i in $(seq 100); do
    (($(stat -c %s "$out" 2>/dev/null || echo 0) >= 3 * frame_bytes)) && break
    sleep 0.05
  done
  local t0
  t0=$(date +%s%N)
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10; local ps=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  ctr_wait "$cons" 10; local cs=$?
  ((ps == 0)) || fail "producer exited with $ps after SIGINT" || return
  ((cs == 0)) || fail "consumer exited with $cs (expected EOS and 0)" || return
  grep -q "Got EOS from element" "${logs[1]}" || fail "the consumer saw no EOS" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  local size
  size=$(stat -c %s "$out")
  ((size % frame_bytes == 0 && size > 0)) || fail "the consumer wrote $size bytes, not whole frames" || return
  why="PID 1 stopped $ms ms after SIGINT, exit 0; consumer got EOS after $((size / frame_bytes)) frames, exit 0; nothing left"
}

# docker run --init: tini is PID 1 and passes SIGTERM on to gst-launch.
recipe_init_sigterm() {
  command -v tini >/dev/null || { why="tini is not installed (docker run --init runs tini; apt-get install tini)"; return 77; }
  reset_volume 2775
  local ch=init-chan
  logs=("$tmp/init-producer.log" "$tmp/init-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful tini -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=latest reconnect=false num-buffers=100000 ! fakesink
  local cons=$ctr_pid
  sleep 0.3
  local t0
  t0=$(date +%s%N)
  ctr_kill TERM "$prod_host" "$prod"
  ctr_wait "$prod" 5; local ps=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  ctr_wait "$cons" 10; local cs=$?
  ((ps == 143)) || fail "expected exit status 143 (tini passing on the child's SIGTERM), got $ps" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  ((cs != 124)) || fail "the consumer did not notice that its producer went" || return
  grep -q "is gone" "${logs[1]}" || fail "the consumer did not report the producer gone" || return
  why="tini as PID 1: producer died of SIGTERM $ms ms after it (status 143), nothing left, consumer saw it go"
}

# The compose example: init: true and stop_signal: SIGINT with
# gst-launch-1.0 -e. tini passes SIGINT on; consumers get EOS.
recipe_init_sigint() {
  command -v tini >/dev/null || { why="tini is not installed (docker run --init runs tini; apt-get install tini)"; return 77; }
  reset_volume 2775
  local ch=initint-chan
  logs=("$tmp/initint-producer.log" "$tmp/initint-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful tini -- gst-launch-1.0 --no-fault -e videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful tini -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=lossless reconnect=false ! fakesink
  local cons=$ctr_pid
  sleep 0.3
  local t0
  t0=$(date +%s%N)
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10; local ps=$?
  local ms=$((($(date +%s%N) - t0) / 1000000))
  ctr_wait "$cons" 10; local cs=$?
  ((ps == 0)) || fail "producer exited with $ps after SIGINT" || return
  ((cs == 0)) || fail "consumer exited with $cs (expected EOS and 0)" || return
  grep -q "Got EOS from element" "${logs[1]}" || fail "the consumer saw no EOS" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="tini as PID 1: producer stopped $ms ms after SIGINT, exit 0; consumer got EOS, exit 0; nothing left"
}

# docker stop of a consumer container without --init: SIGTERM to a
# gst-launch consumer that is PID 1. The producer must not mind either way.
recipe_consumer_pid1_sigterm() {
  reset_volume 2775
  local ch=cpid1-chan
  logs=("$tmp/cpid1-producer.log" "$tmp/cpid1-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=lossless ! fakesink
  local cons=$ctr_pid cons_host=$ctr_init
  local i n=0
  for i in $(seq 100); do
    n=$(consumer_count "$ch")
    [[ $n == 1 ]] && break
    sleep 0.05
  done
  [[ $n == 1 ]] || fail "the consumer never attached" || return
  ctr_kill TERM "$cons_host" "$cons"
  local how
  for i in $(seq 30); do
    kill -0 "$cons" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$cons" 2>/dev/null; then
    how="PID 1 consumer ignored SIGTERM; SIGKILL after 1.5 s"
    ctr_kill KILL "$cons_host" "$cons"
  else
    how="PID 1 consumer exited on SIGTERM"
  fi
  ctr_wait "$cons" 10
  local t0
  t0=$(date +%s%N)
  for i in $(seq 100); do
    n=$(consumer_count "$ch")
    [[ $n == 0 ]] && break
    sleep 0.02
  done
  local ms=$((($(date +%s%N) - t0) / 1000000))
  [[ $n == 0 ]] || fail "the producer still lists the killed consumer ($how)" || return
  kill -0 "$prod" 2>/dev/null || fail "the producer died with its consumer" || return
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10; local ps=$?
  ((ps == 0)) || fail "producer exited with $ps after SIGINT" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="$how; the producer dropped it within $ms ms of its death and went on"
}

# docker stop of a Python consumer container without --init: PID 1,
# SIGTERM at its default action (ignored by the kernel for PID 1), and
# SIGINT, which Python turns into KeyboardInterrupt.
recipe_python_pid1_signals() {
  /usr/bin/python3 -c 'import numpy, gi' 2>/dev/null || { why="/usr/bin/python3 lacks numpy or gi (python3-numpy, python3-gi)"; return 77; }
  [[ -f "$build/lib/gobject/Bips-1.0.typelib" ]] || { why="no Bips-1.0.typelib in $build (introspection disabled)"; return 77; }
  reset_volume 2775
  local ch=pypid1-chan
  logs=("$tmp/pypid1-producer.log" "$tmp/pypid1-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- /usr/bin/python3 -c '
import bips
with bips.Consumer(__import__("sys").argv[1], policy="latest", timeout=10) as consumer:
    print("attached", flush=True)
    for frame in consumer.frames(timeout=10):
        pass' "$ch"
  local cons=$ctr_pid cons_host=$ctr_init
  local i
  for i in $(seq 200); do
    grep -q "^attached" "${logs[1]}" && break
    sleep 0.05
  done
  grep -q "^attached" "${logs[1]}" || fail "the python consumer did not attach" || return
  local term
  ctr_kill TERM "$cons_host" "$cons"
  sleep 1
  if kill -0 "$cons" 2>/dev/null; then term="ignored SIGTERM"; else term="exited on SIGTERM"; fi
  local cs=0
  if kill -0 "$cons" 2>/dev/null; then
    ctr_kill INT "$cons_host" "$cons"
    ctr_wait "$cons" 5; cs=$?
  else
    ctr_wait "$cons" 1; cs=$?
  fi
  ctr_kill INT "$prod_host" "$prod"
  ctr_wait "$prod" 10; local ps=$?
  ((cs != 124)) || fail "the python consumer as PID 1 stopped on neither SIGTERM nor SIGINT" || return
  ((ps == 0)) || fail "producer exited with $ps" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="python consumer as PID 1 $term; then SIGINT ended it (status $cs$(grep -q KeyboardInterrupt "${logs[1]}" && echo ", KeyboardInterrupt")); producer unaffected"
}

userns_ok() {
  setpriv --reuid="$A" --regid="$A" --groups="$G" -- \
    unshare --user --map-root-user --pid --fork --kill-child --mount-proc --ipc --mount --net --uts -- \
    bash -c 'mount -t tmpfs none /dev/shm' >/dev/null 2>&1
}

# Rootless, one user: each container root is host uid A (rootless Podman
# of one user; --userns=keep-id is the same case). Default mode 0600.
recipe_userns_same_user() {
  userns_ok || { why="an unprivileged uid cannot create user namespaces here (unshare --user --map-root-user failed)"; return 77; }
  reset_volume 2775
  byte_exact userns-same-user "$A:$A:$G" "$A:$A:$G" rootless 0600 600 "$A:$G"
}

# Rootless, two users: container roots are host uids A and B; B keeps its
# supplementary group G (Podman: --group-add keep-groups).
recipe_userns_group() {
  userns_ok || { why="an unprivileged uid cannot create user namespaces here (unshare --user --map-root-user failed)"; return 77; }
  reset_volume 2775
  byte_exact userns-group "$A:$A:$G" "$B:$B:$G" rootless 0660 660 "$A:$G"
}

# docker kill (SIGKILL) leaves the socket; a restarted producer container
# takes the name over and a consumer from another container attaches.
recipe_sigkill_restart() {
  reset_volume 2775
  local ch=restart-chan
  logs=("$tmp/restart-producer1.log" "$tmp/restart-inspector.log" "$tmp/restart-producer2.log" "$tmp/restart-consumer.log")
  ctr_start "${logs[0]}" "$A:$A:$G" rootful none -- gst-launch-1.0 --no-fault videotestsrc is-live=true \
    ! "$caps" ! bipssink channel="$ch" perms=0660
  local prod=$ctr_pid prod_host=$ctr_init
  wait_for_socket "$ch" 10 || fail "the producer made no socket in 10 s" || return
  ctr_kill KILL "$prod_host" "$prod"
  ctr_wait "$prod" 10
  [[ -S "$vol/bips-$ch" ]] || fail "SIGKILL left no socket (expected a dead one)" || return
  ctr_start "${logs[1]}" "$B:$B:$G" rootful none -- "$bips_tool" list --json
  ctr_wait "$ctr_pid" 10
  grep -q '"producer_state": "dead"' "${logs[1]}" ||
    fail "bips list in another container did not report the dead channel: $(cat "${logs[1]}")" || return
  local prod_cmd
  producer_cmd "$ch" 0660
  ctr_start "${logs[2]}" "$A:$A:$G" rootful none -- "${prod_cmd[@]}"
  local prod2=$ctr_pid
  ctr_start "${logs[3]}" "$B:$B:$G" rootful none -- gst-launch-1.0 --no-fault bipssrc channel="$ch" \
    policy=lossless timeout=20000 reconnect=false ! filesink location="$tmp/home-$B/restart.raw"
  local cons=$ctr_pid
  ctr_wait "$cons" 30; local cs=$?
  ((cs == 0)) || fail "consumer exited with $cs" || return
  ctr_wait "$prod2" 10; local ps=$?
  ((ps == 0)) || fail "the restarted producer exited with $ps: $(grep -m1 ERROR "${logs[2]}")" || return
  [[ "$(sha256sum <"$tmp/home-$B/restart.raw" | cut -d' ' -f1)" == "$ref_sum" ]] ||
    fail "frames differ from the reference" || return
  volume_empty || fail "left in the channel folder: $(ls -A "$vol")" || return
  why="SIGKILL left a dead socket, bips list (other container) reported it dead, the restarted producer took it over, $frames frames byte-exact"
}

# ---------------------------------------------------------------- run

run() {
  local name=$1 t0 rc ms
  why="" logs=()
  t0=$(date +%s%N)
  "recipe_$name"
  rc=$?
  cleanup
  ms=$((($(date +%s%N) - t0) / 1000000))
  local secs
  secs=$(printf '%d.%01d s' $((ms / 1000)) $((ms % 1000 / 100)))
  case $rc in
    0) n_pass=$((n_pass + 1)); echo "PASS $name ($secs): $why" ;;
    77) n_skip=$((n_skip + 1)); echo "SKIP $name: $why" ;;
    *)
      n_fail=$((n_fail + 1))
      echo "FAIL $name ($secs): $why"
      local f
      for f in "${logs[@]}"; do
        [[ -f $f ]] || continue
        echo "  ---- $(basename "$f")"
        tail -n 15 "$f" | sed 's/^/  | /'
      done
      ;;
  esac
}

echo "# uids: producer $A, consumer $B (group $G), outsider $C; build $build"
run isolation
run same_uid
run group_0660
run python_consumer
run info_across_pid_namespaces
run denied_third_uid
run denied_closed_dir
run pid1_sigterm
run pid1_sigint
run init_sigterm
run init_sigint
run consumer_pid1_sigterm
run python_pid1_signals
run userns_same_user
run userns_group
run sigkill_restart

ms=$((($(date +%s%N) - t_start) / 1000000))
echo "containers: $n_pass passed, $n_fail failed, $n_skip skipped ($((ms / 1000)).$((ms % 1000 / 100)) s)"
((n_fail == 0))
