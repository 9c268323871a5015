#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of the `bips` tool against real channels in a private BIPS_DIR.

    cli_test.py CASE BIPS HELPER

CASE is one of the functions named case_* below (with '-' for '_'); BIPS is
the built tool and HELPER the built bips-cli-helper (tools/bips/tests/
cli_helper.cpp), which creates live producers (with consumers) and dead
channels. Exits 0 on success; prints what failed otherwise.
"""

import base64
import json
import os
import pty
import random
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import termios
import time

CHANNEL_KEYS = {
    "name", "socket_path", "producer_state", "producer_alive", "producer_closed",
    "socket_mode", "producer_pid", "layout_version", "epoch_us", "epoch_utc",
    "slot_count", "slot_size_bytes", "max_consumers", "segment_bytes",
    "published_frames", "end_of_stream_markers", "stream_info", "stream_info_bytes",
    "stream_info_valid_utf8", "stream_info_base64", "consumer_count", "held_slots",
    "consumers", "producer_local_pid", "producer_other_pid_namespace", "producer_waiting_ns",
    "producer_waited_ns", "evicted_consumers", "evicted_unread_frames",
}
CONSUMER_KEYS = {
    "index", "policy", "pid", "alive", "received_frames", "skipped_frames",
    "held_slots", "lag_frames", "lag_exact", "local_pid", "other_pid_namespace",
    "release_age_ns", "blocking_ns",
}
TOP_CHANNEL_KEYS = CHANNEL_KEYS | {"publish_rate_frames_per_s"}
TOP_CONSUMER_KEYS = CONSUMER_KEYS | {"receive_rate_frames_per_s", "skip_rate_frames_per_s"}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Env:
    """A private channel folder, the processes started in it, and the tool."""

    def __init__(self, bips, helper):
        self.bips_path = bips
        self.helper = helper
        self.dir = tempfile.mkdtemp(prefix="bips-cli-")
        self.env = dict(os.environ, BIPS_DIR=self.dir)
        self.procs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, "bips-" + name)

    def exists(self, name):
        try:
            os.lstat(self.path(name))
            return True
        except FileNotFoundError:
            return False

    def producer(self, name, *args):
        """Starts a live producer; returns (process, stream info bytes)."""
        p = subprocess.Popen([self.helper, "producer", name, *args], env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 10)
        check(ready, f"helper producer {name} did not get ready in 10 s")
        line = p.stdout.readline().decode().split()
        check(line and line[0] == "ready",
              f"helper producer {name}: {line!r} {p.stderr.read().decode() if p.poll() is not None else ''}")
        return p, bytes.fromhex(line[1]) if len(line) > 1 else b""

    def dead(self, name):
        r = subprocess.run([self.helper, "dead", name], env=self.env, capture_output=True,
                           timeout=20)
        check(r.stdout.strip() == b"dead", f"helper dead {name}: {r.stdout!r} {r.stderr!r}")
        check(self.exists(name), f"the dead channel {name} left no socket")

    def bips(self, *args, timeout=30):
        return subprocess.run([self.bips_path, *args], env=self.env, capture_output=True,
                              timeout=timeout)


def valid_json(data, what):
    """Checks `data` with `python3 -m json.tool` and returns it parsed."""
    r = subprocess.run([sys.executable, "-m", "json.tool"], input=data, capture_output=True)
    check(r.returncode == 0, f"{what}: json.tool rejects the output: {r.stderr.decode()}\n"
                             f"{data[:2000]!r}")
    check(all(b < 0x80 for b in data), f"{what}: the JSON is not pure ASCII")
    return json.loads(data)


def check_document(doc, kind, env):
    check(doc.get("schema") == f"bips.{kind}/1", f"schema is {doc.get('schema')!r}")
    check(doc.get("version") == 1, f"version is {doc.get('version')!r}")
    check(isinstance(doc.get("tool_version"), str), "tool_version missing")
    check(doc.get("directory") == env.dir, f"directory is {doc.get('directory')!r}")


def by_name(channels):
    return {c["name"]: c for c in channels}


def check_live_channel(ch, proc, info, consumers, keys=CHANNEL_KEYS, ckeys=CONSUMER_KEYS):
    name = ch["name"]
    check(set(ch) == keys, f"{name}: keys differ: {sorted(set(ch) ^ keys)}")
    check(ch["producer_state"] == "live" and ch["producer_alive"] is True
          and ch["producer_closed"] is False, f"{name}: not live: {ch}")
    check(ch["producer_pid"] == proc.pid, f"{name}: producer_pid {ch['producer_pid']} != {proc.pid}")
    check(ch["producer_local_pid"] == proc.pid and ch["producer_other_pid_namespace"] is False,
          f"{name}: the producer in our own PID namespace: {ch}")
    check(isinstance(ch["producer_waited_ns"], int) and ch["evicted_consumers"] == 0,
          f"{name}: waiting figures {ch}")
    check(ch["slot_count"] == 4 and ch["slot_size_bytes"] == 4096, f"{name}: geometry {ch}")
    check(ch["socket_mode"] == "0600", f"{name}: socket_mode {ch['socket_mode']!r}")
    check(ch["published_frames"] > 0, f"{name}: nothing published")
    check(ch["segment_bytes"] >= 4 * 4096, f"{name}: segment_bytes {ch['segment_bytes']}")
    check(isinstance(ch["epoch_us"], int) and ch["epoch_utc"].endswith("Z"), f"{name}: epoch")
    check(ch["stream_info_bytes"] == len(info), f"{name}: stream_info_bytes")
    try:
        text = info.decode("utf-8")
        check(ch["stream_info_valid_utf8"] is True, f"{name}: valid UTF-8 flagged invalid")
        check(ch["stream_info"] == text, f"{name}: stream info {ch['stream_info']!r} != {text!r}")
        check(ch["stream_info_base64"] is None, f"{name}: base64 given for valid UTF-8")
    except UnicodeDecodeError:
        check(ch["stream_info_valid_utf8"] is False, f"{name}: invalid UTF-8 flagged valid")
        check("\ufffd" in ch["stream_info"], f"{name}: no U+FFFD in {ch['stream_info']!r}")
        check(base64.b64decode(ch["stream_info_base64"]) == info,
              f"{name}: base64 does not round-trip")
    check(ch["consumer_count"] == len(consumers) == len(ch["consumers"]),
          f"{name}: consumers {ch['consumers']}")
    check(sorted(c["policy"] for c in ch["consumers"]) == sorted(consumers),
          f"{name}: policies {ch['consumers']}")
    for c in ch["consumers"]:
        check(set(c) == ckeys, f"{name}: consumer keys differ: {sorted(set(c) ^ ckeys)}")
        check(c["pid"] == proc.pid and c["alive"] is True, f"{name}: consumer {c}")
        check(c["local_pid"] == proc.pid and c["other_pid_namespace"] is False,
              f"{name}: consumer in our own PID namespace: {c}")
        check(isinstance(c["lag_frames"], int) and isinstance(c["lag_exact"], bool),
              f"{name}: lag {c}")
        if c["policy"] == "lossless":
            check(c["lag_frames"] <= ch["slot_count"], f"{name}: lossless lag {c}")
            check(c["skipped_frames"] == 0, f"{name}: lossless consumer skipped {c}")


def case_json(env):
    cam, cam_info = env.producer("cam0", "--info", "utf8", "--consumers", "lossless,latest")
    binp, bin_info = env.producer("bin0", "--info", "binary")
    plain, plain_info = env.producer("plain0")
    check(b"\x01" in cam_info and b'"' in cam_info and b"\xf0\x9f" in cam_info,
          "the helper's stream info lacks the awkward bytes")
    time.sleep(0.5)

    r = env.bips("list", "--json")
    check(r.returncode == 0, f"list --json exit {r.returncode}: {r.stderr.decode()}")
    doc = valid_json(r.stdout, "list --json")
    check_document(doc, "list", env)
    check(doc["healthy"] is True and doc["problems"] == [], f"not healthy: {doc['problems']}")
    chans = by_name(doc["channels"])
    check(sorted(chans) == ["bin0", "cam0", "plain0"], f"channels {sorted(chans)}")
    check_live_channel(chans["cam0"], cam, cam_info, ["lossless", "latest"])
    check_live_channel(chans["bin0"], binp, bin_info, [])
    check_live_channel(chans["plain0"], plain, plain_info, [])

    r = env.bips("info", "cam0", "--json")
    check(r.returncode == 0, f"info --json exit {r.returncode}: {r.stderr.decode()}")
    doc = valid_json(r.stdout, "info --json")
    check_document(doc, "info", env)
    check(set(doc) == {"schema", "version", "tool_version", "directory", "channel"},
          f"info members {sorted(doc)}")
    check_live_channel(doc["channel"], cam, cam_info, ["lossless", "latest"])

    r = env.bips("info", "bin0", "--json")
    check_live_channel(valid_json(r.stdout, "info bin0")["channel"], binp, bin_info, [])

    r = env.bips("info", "nosuch", "--json")
    check(r.returncode == 1, f"info of a missing channel exits {r.returncode}")
    doc = valid_json(r.stdout, "info nosuch --json")
    check(doc["error"]["code"] == "not-found", f"error {doc.get('error')}")
    check("channel" not in doc, "an error document has a channel")

    # A dead channel: everything its producer alone knew is null.
    env.dead("old0")
    r = env.bips("info", "old0", "--json")
    check(r.returncode == 0, f"info of a dead channel exits {r.returncode}")
    ch = valid_json(r.stdout, "info old0")["channel"]
    check(set(ch) == CHANNEL_KEYS, f"dead channel keys differ: {sorted(set(ch) ^ CHANNEL_KEYS)}")
    check(ch["producer_state"] == "dead" and ch["producer_alive"] is False, f"dead: {ch}")
    check(ch["published_frames"] is None and ch["producer_pid"] is None
          and ch["consumers"] == [], f"dead channel claims to know: {ch}")

    # The text form marks the lag of the table too.
    r = env.bips("info", "cam0")
    check(r.returncode == 0 and b"LAG" in r.stdout, f"info text: {r.stdout!r}")


def top_row(text, name):
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return cells
    raise Failure(f"no row {name} in:\n{text}")


def case_top_once(env):
    cam, _ = env.producer("cam0", "--fps", "200", "--consumers", "lossless,latest")
    env.dead("old0")
    time.sleep(0.3)

    t0 = time.monotonic()
    r = env.bips("top", "--once", "--interval", "0.5")
    took = time.monotonic() - t0
    out = r.stdout.decode()
    check(r.returncode == 0, f"top --once exit {r.returncode}: {r.stderr.decode()}")
    check("\x1b" not in out, "top --once wrote terminal control codes")
    check(0.4 < took < 10, f"top --once took {took:.2f} s with --interval 0.5")
    for word in ("FRAMES/S", "LAG", "HELD", "SKIPPED", "lossless", "latest"):
        check(word in out, f"top --once lacks {word}:\n{out}")
    row = top_row(out, "cam0")
    # NAME STATE PID CONS FRAMES/S FRAMES HELD
    check(row[1] == "live" and row[2] == str(cam.pid) and row[3] == "2/16", f"cam0 row {row}")
    check(float(row[4]) > 0, f"cam0 publishes at {row[4]} frames/s:\n{out}")
    check(top_row(out, "old0")[1] == "dead", "old0 not dead")

    r = env.bips("top", "--once", "--json", "--interval", "0.5")
    check(r.returncode == 0, f"top --once --json exit {r.returncode}: {r.stderr.decode()}")
    doc = valid_json(r.stdout, "top --once --json")
    check_document(doc, "top", env)
    check(0.4 < doc["sample_interval_s"] < 10, f"sample_interval_s {doc['sample_interval_s']}")
    chans = by_name(doc["channels"])
    ch = chans["cam0"]
    check(set(ch) == TOP_CHANNEL_KEYS, f"top channel keys differ: {sorted(set(ch) ^ TOP_CHANNEL_KEYS)}")
    check(20 < ch["publish_rate_frames_per_s"] < 1000,
          f"publish rate {ch['publish_rate_frames_per_s']} for a 200 fps producer")
    pol = {c["policy"]: c for c in ch["consumers"]}
    for c in pol.values():
        check(set(c) == TOP_CONSUMER_KEYS, f"top consumer keys differ: {sorted(set(c) ^ TOP_CONSUMER_KEYS)}")
    check(pol["lossless"]["receive_rate_frames_per_s"] > 20, f"lossless rate {pol['lossless']}")
    check(pol["latest"]["skip_rate_frames_per_s"] > 0, f"latest skips nothing: {pol['latest']}")
    check(chans["old0"]["publish_rate_frames_per_s"] is None, "a dead channel has a rate")
    check(doc["problems"] == [], f"problems {doc['problems']}")


def case_top_live(env):
    env.producer("cam0", "--consumers", "lossless")

    # Not a terminal: one snapshot after another, no control codes; Ctrl-C
    # (SIGINT) ends it with status 0.
    p = subprocess.Popen([env.bips_path, "top", "--interval", "0.2"], env=env.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=5)
    check(p.returncode == 0, f"top after SIGINT exits {p.returncode}: {err.decode()}")
    check(b"\x1b" not in out, "top into a pipe wrote terminal control codes")
    check(out.count(b"bips top") >= 2, f"top printed {out.count(b'bips top')} snapshots")

    # JSON lines: --count samples, one document per line.
    r = env.bips("top", "--json", "--interval", "0.2", "--count", "3")
    check(r.returncode == 0, f"top --json --count 3 exit {r.returncode}")
    lines = r.stdout.splitlines()
    check(len(lines) == 3, f"{len(lines)} lines for --count 3")
    for line in lines:
        doc = valid_json(line, "top --json line")
        check(doc["schema"] == "bips.top/1", "schema of a top line")
        check(by_name(doc["channels"])["cam0"]["publish_rate_frames_per_s"] is not None,
              "a top line without a rate")

    # A terminal: redrawn in place, and restored on SIGINT and on q.
    for how in ("sigint", "q"):
        master, slave = pty.openpty()
        before = termios.tcgetattr(slave)
        p = subprocess.Popen([env.bips_path, "top", "--interval", "0.2"],
                             env=dict(env.env, TERM="xterm"),
                             stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        out = b""
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                out += os.read(master, 65536)
        if how == "sigint":
            p.send_signal(signal.SIGINT)
        else:
            os.write(master, b"q")
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            raise Failure(f"top on a terminal did not exit after {how}")
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        after = termios.tcgetattr(slave)
        os.close(master)
        os.close(slave)
        check(p.returncode == 0, f"top on a terminal exits {p.returncode} after {how}")
        check(out.startswith(b"\x1b[?1049h"), f"no alternate screen: {out[:40]!r}")
        check(b"cam0" in out and b"\x1b[H" in out, "the view was not drawn")
        check(out.rstrip(b"\r\n").endswith(b"\x1b[?25h\x1b[?1049l"),
              f"the terminal was not restored after {how}: {out[-40:]!r}")
        check(after[3] == before[3], f"terminal modes not restored after {how}")


def case_clean_dry_run(env):
    env.producer("cam0")
    env.dead("old0")

    r = env.bips("clean", "--dry-run")
    out = r.stdout.decode()
    check(r.returncode == 0, f"clean --dry-run exit {r.returncode}: {r.stderr.decode()}")
    check("would remove old0" in out and "cam0" not in out, f"clean --dry-run said:\n{out}")
    check(env.exists("old0") and env.exists("cam0"), "clean --dry-run removed something")

    r = env.bips("clean", "--dry-run", "old0")
    check(r.returncode == 0 and b"would remove old0" in r.stdout, f"dry run of old0: {r}")
    r = env.bips("clean", "--dry-run", "cam0")
    check(r.returncode == 1 and b"live" in r.stderr, f"dry run of live cam0: {r}")
    check(env.exists("old0") and env.exists("cam0"), "clean --dry-run NAME removed something")

    r = env.bips("list", "--json")
    chans = by_name(valid_json(r.stdout, "list")["channels"])
    check(chans["old0"]["producer_state"] == "dead" and chans["cam0"]["producer_state"] == "live",
          "the channels changed state after a dry run")


def case_clean_named(env):
    cam, _ = env.producer("cam0")
    env.dead("old0")
    env.dead("old1")

    r = env.bips("clean", "cam0")
    check(r.returncode == 1, f"clean of a live channel exits {r.returncode}")
    check(b"refusing" in r.stderr and b"live" in r.stderr and str(cam.pid).encode() in r.stderr,
          f"clean of a live channel said: {r.stderr.decode()}")
    check(env.exists("cam0"), "clean removed a live channel")
    first = valid_json(env.bips("info", "cam0", "--json").stdout, "info")["channel"]
    time.sleep(0.2)
    second = valid_json(env.bips("info", "cam0", "--json").stdout, "info")["channel"]
    check(second["producer_alive"] and second["published_frames"] > first["published_frames"],
          "the live channel stopped working after clean refused it")

    r = env.bips("clean", "old0")
    check(r.returncode == 0 and r.stdout == b"removed old0\n", f"clean old0: {r}")
    check(not env.exists("old0"), "old0 is still there")
    check(env.exists("old1"), "clean old0 removed old1 too")

    r = env.bips("clean", "old0")
    check(r.returncode == 1 and b"no channel 'old0'" in r.stderr, f"clean of a gone name: {r}")

    r = env.bips("clean", "cam0", "old1")
    check(r.returncode == 1, f"clean of a live and a dead channel exits {r.returncode}")
    check(b"removed old1" in r.stdout and not env.exists("old1"), "old1 not removed")
    check(env.exists("cam0"), "clean removed the live cam0")

    r = env.bips("clean", "bad/name")
    check(r.returncode == 2, f"clean of an invalid name exits {r.returncode}")

    # A FIFO under a channel's name is not a socket: refused, left alone.
    os.mkfifo(env.path("fifo0"))
    r = env.bips("clean", "fifo0", timeout=10)
    check(r.returncode == 1 and env.exists("fifo0"), f"clean of a FIFO: {r}")

    leftovers = [f for f in os.listdir(env.dir) if f.startswith(".bips-")]
    check(not leftovers, f"temporary names left: {leftovers}")


def case_clean_race(env):
    """`clean NAME` racing a producer that takes the dead name over: whatever
    the order, the producer ends up live under its name."""
    outcomes = {0: 0, 1: 0}
    for i in range(40):
        env.dead("race0")
        p = subprocess.Popen([env.helper, "producer", "race0", "--seconds", "10"], env=env.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        env.procs.append(p)
        time.sleep(random.uniform(0, 0.004))
        r = env.bips("clean", "race0")
        check(r.returncode in outcomes, f"clean exit {r.returncode}: {r.stderr.decode()}")
        outcomes[r.returncode] += 1
        ready, _, _ = select.select([p.stdout], [], [], 10)
        check(ready and p.stdout.readline().startswith(b"ready"),
              f"iteration {i}: the producer failed: {p.stderr.read().decode() if p.poll() is not None else 'no answer'}")
        ch = valid_json(env.bips("info", "race0", "--json").stdout, "info race0")["channel"]
        check(ch["producer_state"] == "live" and ch["producer_pid"] == p.pid,
              f"iteration {i}: the live producer lost its name (clean said "
              f"{r.stdout.decode()}{r.stderr.decode()}): {ch}")
        p.terminate()
        p.wait(timeout=5)
        check(not env.exists("race0"), f"iteration {i}: the producer's exit left its name")
    leftovers = [f for f in os.listdir(env.dir) if f.startswith(".bips-")]
    check(not leftovers, f"temporary names left: {leftovers}")
    print(f"clean removed the dead name first {outcomes[0]} times, refused {outcomes[1]} times")


def case_list_status(env):
    r = env.bips("list", "--help")
    check(r.returncode == 0 and b"Exit status" in r.stdout and b"3 " in r.stdout,
          "list --help does not explain the exit status")

    r = env.bips("list")
    check(r.returncode == 0 and r.stdout == b"no channels\n", f"empty folder: {r}")

    env.producer("cam0")
    r = env.bips("list")
    check(r.returncode == 0, f"a live channel only: exit {r.returncode}: {r.stderr.decode()}")

    os.mkfifo(env.path("fifo0"))
    t0 = time.monotonic()
    r = env.bips("list", timeout=10)
    check(time.monotonic() - t0 < 5, "list blocked on a FIFO")
    check(r.returncode == 3, f"a FIFO: exit {r.returncode}")
    check(b"problems:" in r.stdout and b"FIFO" in r.stdout, f"a FIFO: {r.stdout.decode()}")
    check(b"1 problem" in r.stderr, f"a FIFO: stderr {r.stderr.decode()}")
    r = env.bips("list", "--json", timeout=10)
    check(r.returncode == 3, f"a FIFO, --json: exit {r.returncode}")
    doc = valid_json(r.stdout, "list --json with a FIFO")
    check(doc["healthy"] is False, "a FIFO is healthy")
    check(len(doc["problems"]) == 1 and doc["problems"][0]["name"] == "fifo0"
          and "FIFO" in doc["problems"][0]["message"], f"problems {doc['problems']}")
    os.unlink(env.path("fifo0"))

    env.dead("old0")
    r = env.bips("list")
    check(r.returncode == 3 and b"1 dead channel" in r.stderr, f"a dead channel: {r}")
    r = env.bips("clean")
    check(r.returncode == 0 and b"removed old0" in r.stdout, f"clean: {r}")
    r = env.bips("list")
    check(r.returncode == 0, f"after clean: exit {r.returncode}: {r.stderr.decode()}")

    env.env["BIPS_DIR"] = os.path.join(env.dir, "nonexistent")
    r = env.bips("list")
    check(r.returncode == 1, f"a missing folder: exit {r.returncode}")


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    case = globals().get("case_" + sys.argv[1].replace("-", "_"))
    if case is None:
        print(f"unknown case {sys.argv[1]}", file=sys.stderr)
        return 2
    env = Env(sys.argv[2], sys.argv[3])
    try:
        case(env)
    except Failure as e:
        print(f"FAIL {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    finally:
        env.close()
    print(f"ok {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
