# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced by bridge-send.sh and bridge-recv.sh (see docs/bridge.md): the
# build-tree set-up of build-env.sh, argument helpers, and bridge_run, which
# runs one gst-launch-1.0 pipeline and stops it cleanly on Ctrl-C, SIGTERM
# or SIGHUP.
# shellcheck source=pipelines/build-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/build-env.sh"

bridge_name="$(basename "$0" .sh)"

bridge_die() {
  echo "$bridge_name: $*" >&2
  exit 2
}

# bridge_have ELEMENT: true when GStreamer can make ELEMENT here.
bridge_have() {
  gst-inspect-1.0 --exists "$1" 2>/dev/null
}

# bridge_need ELEMENT PACKAGE: fail with the Debian package that brings it.
bridge_need() {
  bridge_have "$1" ||
    bridge_die "GStreamer element '$1' is missing; install the Debian package $2"
}

bridge_uint() { # bridge_uint OPTION VALUE
  [[ $2 =~ ^[0-9]+$ ]] || bridge_die "$1 needs a whole number, not '$2'"
}

# bridge_run ARGS...: runs gst-launch-1.0 ARGS in a process group of its own
# (so a terminal's Ctrl-C reaches it once, through us, and not twice) and
# turns SIGINT, SIGTERM and SIGHUP into one SIGINT for it: gst-launch then
# stops the pipeline (bipssink removes its channel) and exits 0, and so do we.
# A pipeline that has not stopped 10 s later is killed. --no-fault: a crash
# ends gst-launch at once (status 139) instead of leaving it spinning in its
# fault handler, so a supervisor sees it and can start it again.
bridge_run() {
  local shown=() arg
  for arg in "$@"; do
    [[ $arg == passphrase=* ]] && arg="passphrase=(hidden)"
    shown+=("$arg")
  done
  echo "$bridge_name: gst-launch-1.0 ${shown[*]}" >&2
  set -m
  gst-launch-1.0 --no-fault "$@" &
  # shellcheck disable=SC2034 # stopping and killer are set in the trap
  local pid=$! stopping=0 status=0 killer=""
  set +m
  trap 'if ((!stopping)); then
          stopping=1
          kill -INT "$pid" 2>/dev/null || true
          sleep 10 &
          killer=$!
        fi' INT TERM HUP
  # wait returns early (status > 128) whenever a trapped signal comes in
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -z $killer ]]; then
      wait "$pid" || true
      continue
    fi
    wait -n "$pid" "$killer" 2>/dev/null || true
    if ! kill -0 "$killer" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
      echo "$bridge_name: the pipeline did not stop within 10 s of the signal; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait "$pid" || status=$?
  trap - INT TERM HUP
  if [[ -n $killer ]]; then
    kill "$killer" 2>/dev/null || true
    wait "$killer" 2>/dev/null || true
  fi
  return "$status"
}
