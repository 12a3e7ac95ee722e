#!/usr/bin/env python3
"""What the proc connector costs a listener, against proctree's polling (issue #15).

Measures, as root, the two ways `proctree --watch` could learn of processes:

1. Events: subscribes to the proc connector (AF_NETLINK, NETLINK_CONNECTOR, group
   CN_IDX_PROC, PROC_CN_MCAST_LISTEN), starts a bounded burst of short processes (`sh -c`
   running /bin/true --burst times), and counts the fork, exec and exit events of the
   burst's processes against the number started: fewer means events were lost (recv says
   ENOBUFS when the socket's buffer overflowed). With --read-cmdline the listener reads each
   exec'd process's /proc/PID/cmdline, as a watch that prints command lines must (the event
   carries none), and counts those already gone. It reports the listener's CPU time
   (getrusage of this process while it received and decoded the events), the events of
   every other process on the machine it had to read as well, and the burst's wall time.
2. Polling, with --proctree PATH: starts --processes sleeping processes (bounded: each
   sleeps --sleep seconds, and all are killed at the end), then runs `PATH --json` into
   /dev/null --runs times and reports each listing's user and system CPU time, which is
   what one interval of `proctree --watch` costs.

Run it on an otherwise quiet machine; it stops only the processes it started.

    sudo python3 scripts/proc-connector-cost.py --burst 3000 \
        --proctree target/release/proctree --processes 3000
"""

import argparse
import errno
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

NLMSG_HEADER = struct.Struct("=IHHII")  # len, type, flags, seq, pid
CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
FORK = struct.Struct("=iiii")  # parent pid, parent tgid, child pid, child tgid
PIDS = struct.Struct("=ii")  # process pid, process tgid (exec, exit)


def subscribe(rcvbuf):
    """A socket subscribed to the proc connector's events."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((os.getpid(), CN_IDX_PROC))
    send_op(sock, PROC_CN_MCAST_LISTEN)
    return sock


def send_op(sock, op):
    payload = struct.pack("=I", op)
    cn = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    sock.send(NLMSG_HEADER.pack(NLMSG_HEADER.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn)


def events(data):
    """(what, payload) of each proc event in one datagram."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length = NLMSG_HEADER.unpack_from(data, offset)[0]
        if length < NLMSG_HEADER.size:
            return
        body = offset + NLMSG_HEADER.size + CN_MSG.size
        what = EVENT_HEAD.unpack_from(data, body)[0]
        yield what, data[body + EVENT_HEAD.size : offset + length]
        offset += (length + 3) & ~3


def read_cmdline(pid):
    """Whether /proc/PID/cmdline could still be read (the process had not yet exited)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return bool(file.read())
    except OSError:
        return False


def measure_events(burst, rcvbuf, deadline, cmdlines):
    sock = subscribe(rcvbuf)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    loop = f"i=0; while [ $i -lt {burst} ]; do /bin/true; i=$((i+1)); done"
    shell = subprocess.Popen(["sh", "-c", loop])
    ours = set()  # the burst's processes: the shell's children
    seen = {"fork": 0, "exec": 0, "exit": 0}
    others = lost = datagrams = gone = 0
    shell_done_at = None
    while True:
        now = time.monotonic()
        if now - started > deadline:
            print(f"deadline of {deadline}s reached", file=sys.stderr)
            break
        if shell_done_at is not None and now - shell_done_at > 0.5:
            break
        ready, _, _ = select.select([sock], [], [], 0.1)
        if not ready:
            continue
        try:
            data = sock.recv(65536)
        except OSError as error:
            if error.errno == errno.ENOBUFS:
                lost += 1
                continue
            raise
        datagrams += 1
        for what, payload in events(data):
            if what == PROC_EVENT_FORK:
                _, parent_tgid, child_pid, child_tgid = FORK.unpack_from(payload)
                if parent_tgid == shell.pid and child_pid == child_tgid:
                    ours.add(child_pid)
                    seen["fork"] += 1
                else:
                    others += 1
            elif what in (PROC_EVENT_EXEC, PROC_EVENT_EXIT):
                pid, tgid = PIDS.unpack_from(payload)
                if pid in ours and pid == tgid:
                    seen["exec" if what == PROC_EVENT_EXEC else "exit"] += 1
                    if cmdlines and what == PROC_EVENT_EXEC and not read_cmdline(pid):
                        gone += 1
                elif what == PROC_EVENT_EXIT and pid == shell.pid:
                    shell_done_at = time.monotonic()
                else:
                    others += 1
            elif what != 0:
                others += 1
    burst_wall = (shell_done_at or time.monotonic()) - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    shell.wait()
    send_op(sock, PROC_CN_MCAST_IGNORE)
    sock.close()
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    total = sum(seen.values())
    print(f"proc connector, rcvbuf {rcvbuf or 'default'}{', reading cmdline' if cmdlines else ''}:"
          f" {burst} processes started in {burst_wall:.2f}s")
    print(f"  events of the burst seen: fork {seen['fork']}, exec {seen['exec']}, exit {seen['exit']}"
          f" (of {burst} each); ENOBUFS (lost) {lost}; other processes' events {others}; datagrams {datagrams}")
    if cmdlines:
        print(f"  cmdline already gone (empty or unreadable) at the exec event: {gone} of {seen['exec']}")
    print(f"  listener CPU: user {user:.3f}s sys {system:.3f}s"
          f" = {1e6 * (user + system) / max(total + others, 1):.1f} us per event")


def measure_listing(proctree, processes, runs, sleep):
    sleepers = []
    try:
        for _ in range(processes):
            sleepers.append(subprocess.Popen(["sleep", str(sleep)], stdin=subprocess.DEVNULL))
        with open("/proc/loadavg") as loadavg:
            total = loadavg.read().split()[3]
        print(f"proctree listing with {processes} extra sleeping processes (running/total: {total}):")
        for run in range(runs):
            with open(os.devnull, "wb") as devnull:
                start = time.monotonic()
                child = subprocess.Popen([proctree, "--json"], stdout=devnull)
                _, status, usage = os.wait4(child.pid, 0)
                child.returncode = os.waitstatus_to_exitcode(status)
                wall = time.monotonic() - start
            print(f"  run {run + 1}: user {usage.ru_utime:.3f}s sys {usage.ru_stime:.3f}s"
                  f" wall {wall:.3f}s status {child.returncode}")
    finally:
        for sleeper in sleepers:
            sleeper.kill()
        for sleeper in sleepers:
            sleeper.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=3000, help="short processes to start")
    parser.add_argument("--rcvbuf", type=int, nargs="*", default=[0],
                        help="SO_RCVBUF sizes to try (0: the default)")
    parser.add_argument("--read-cmdline", action="store_true",
                        help="also read each exec'd process's /proc/PID/cmdline")
    parser.add_argument("--deadline", type=float, default=120, help="seconds, at most, per burst")
    parser.add_argument("--proctree", help="a proctree binary to time a listing of")
    parser.add_argument("--processes", type=int, default=3000, help="sleeping processes for the listing")
    parser.add_argument("--runs", type=int, default=5, help="listings to time")
    parser.add_argument("--sleep", type=int, default=300, help="how long each sleeper lives at most")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("proc-connector-cost: needs root (the proc connector needs CAP_NET_ADMIN)")
    if not 0 < args.burst <= 100_000 or not 0 <= args.processes <= 10_000:
        sys.exit("proc-connector-cost: --burst 1-100000, --processes 0-10000")
    for rcvbuf in args.rcvbuf:
        measure_events(args.burst, rcvbuf, args.deadline, False)
        if args.read_cmdline:
            measure_events(args.burst, rcvbuf, args.deadline, True)
    if args.proctree:
        measure_listing(args.proctree, args.processes, args.runs, args.sleep)


if __name__ == "__main__":
    main()
