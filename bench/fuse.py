#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The FUSE benchmark: the mount against the same files on the native filesystem.

Run it as `bench/run fuse [options]` (which builds modelfs and the C helper in
release mode and passes their paths). It builds, in one work directory, a
native tree and a store holding the same files:

  big/v1/model.bin        one large model file (1 GiB of random bytes), sealed
  small/v1..v1000/        1,000 versions of a small model (model.pkl + metadata.json)
  files/v1/f00000..       10,000 small files in one directory, sealed

then serves the store with `modelfs serve --mount`, once per read path
(`--read-path passthrough`, where the kernel reads sealed files itself, and
`--read-path splice`, the fallback), and prints one table with native and
both paths side by side, each path's ratio taken against native measured in
the same session: sequential reads cold and warm (dd bs=1M and cat), mmap
reads (map and touch every page, and pages picked at random), the peak extra
page cache while reading through the mount, first-byte latency of opening a
sealed file, stat/ls -l/readlink/find rates after warm-up, and the latency
of `ln -sfn vN current` promotions. Each target of the FUSE issues is marked
PASS or MISS per path. Benchmarks are not tests: the exit code is 0 whatever
the numbers, and non-zero only when the benchmark could not run. Cold reads
and the page-cache figure need root (drop_caches), and so does passthrough.
"""
import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1 << 20

# Targets from the FUSE issue, as ratios to native (higher is better) unless noted.
TARGET_COLD = 0.95
TARGET_WARM = 0.95
TARGET_MMAP = 0.95
TARGET_META = 0.90
TARGET_FIND = 0.60
TARGET_PAGECACHE = 1.05   # peak extra page cache / bytes read, through the mount
TARGET_PROMOTE_P99_MS = 5.0
MMAP_RANDOM_PAGES = 16384  # pages touched by the random mmap pattern (64 MiB of 4 KiB pages)

IS_ROOT = os.geteuid() == 0


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the trees

def write_file(paths, data):
    for p in paths:
        with open(p, "wb") as f:
            f.write(data)


def build_trees(work, a):
    """Writes native/ and store/ with the same files; reuses them when the recipe matches."""
    recipe = {"big_mib": a.big_mib, "versions": a.versions, "files": a.files,
              "small_bytes": a.small_bytes, "file_bytes": a.file_bytes, "v": 1}
    marker = os.path.join(work, "recipe.json")
    roots = [os.path.join(work, "native"), os.path.join(work, "store")]
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f) == recipe:
                log(f"reusing the trees in {work}")
                return roots
        raise SystemExit(f"bench/run fuse: {work} holds trees of another recipe; pick another "
                         "--dir or remove it")
    rng = random.Random(a.seed)
    t0 = time.monotonic()
    log(f"writing {a.big_mib} MiB of random bytes twice (native and store)")
    for r in roots:
        os.makedirs(os.path.join(r, "big", "v1"))
    outs = [open(os.path.join(r, "big", "v1", "model.bin"), "wb") for r in roots]
    chunk = 8 * MiB
    left = a.big_mib * MiB
    while left:
        n = min(chunk, left)
        data = rng.randbytes(n)
        for f in outs:
            f.write(data)
        left -= n
    for f in outs:
        f.close()

    def record(model, version):
        return json.dumps({"model_name": model, "version": version,
                           "validation_status": "passed",
                           "performance_metrics": {"accuracy": 0.93}}).encode()

    for r in roots:
        write_file([os.path.join(r, "big", "v1", "metadata.json")], record("big", "v1"))
        os.symlink("v1", os.path.join(r, "big", "current"))
    log(f"writing {a.versions} versions of a small model and {a.files} small files, twice")
    for i in range(1, a.versions + 1):
        v = f"v{i}"
        data = rng.randbytes(a.small_bytes)
        for r in roots:
            os.makedirs(os.path.join(r, "small", v))
        write_file([os.path.join(r, "small", v, "model.pkl") for r in roots], data)
        write_file([os.path.join(r, "small", v, "metadata.json") for r in roots],
                   record("small", v))
    for r in roots:
        os.symlink(f"v{a.versions}", os.path.join(r, "small", "current"))
        os.makedirs(os.path.join(r, "files", "v1"))
    for i in range(a.files):
        write_file([os.path.join(r, "files", "v1", f"f{i:05d}") for r in roots],
                   rng.randbytes(a.file_bytes))
    for r in roots:
        os.symlink("v1", os.path.join(r, "files", "current"))
    os.sync()
    with open(marker, "w") as f:
        json.dump(recipe, f)
    log(f"trees written in {time.monotonic() - t0:.1f} s")
    return roots


# ---------------------------------------------------------------- the daemon

class Daemon:
    """Our own `modelfs serve`; stopped by PID and unmounted on every exit path."""

    def __init__(self, modelfs, store, work, extra):
        self.modelfs = modelfs
        self.store = store
        self.mnt = os.path.join(work, "mnt")
        self.ready = os.path.join(work, "ready")
        self.log_path = os.path.join(work, "daemon.log")
        self.extra = extra
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)

    def start(self, timeout):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        args = [self.modelfs, "serve", "--store", self.store, "--mount", self.mnt,
                "--ready-file", self.ready]
        help_text = subprocess.run([self.modelfs, "serve", "--help"], capture_output=True,
                                   text=True).stdout
        if "--listen" in help_text:
            args += ["--listen", "127.0.0.1:0"]
        args += self.extra
        self.logf = open(self.log_path, "a")
        log("starting " + " ".join(args))
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.ready):
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"modelfs serve exited {self.proc.returncode}:\n"
                                 + self.log_tail())
            time.sleep(0.05)
        raise SystemExit(f"modelfs serve not ready after {timeout} s:\n" + self.log_tail())

    def log_tail(self, n=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def mounted(self):
        with open("/proc/mounts") as f:
            return any(line.split()[1] == self.mnt for line in f)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        self.proc = None
        if self.mounted():
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)


# ---------------------------------------------------------------- measuring

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def run_timed(cmd, **kw):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0


def read_cmd(kind, path):
    if kind == "dd":
        return ["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"]
    return ["sh", "-c", 'exec cat "$1" >/dev/null', "sh", path]


def meminfo_cached():
    """Cached + Buffers, in bytes."""
    total = 0
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in ("Cached", "Buffers"):
                total += int(v.split()[0]) * 1024
    return total


def peak_cache(cmd):
    """Runs cmd after dropping caches; returns (peak, end) growth of Cached+Buffers."""
    drop_caches()
    time.sleep(0.2)
    base = meminfo_cached()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], meminfo_cached())
            time.sleep(0.005)

    th = threading.Thread(target=sample)
    th.start()
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    finally:
        done.set()
        th.join()
    end = meminfo_cached()
    peak[0] = max(peak[0], end)
    return peak[0] - base, end - base


def helper_rounds(helper, *args):
    out = subprocess.run([helper, *map(str, args)], check=True, capture_output=True,
                         text=True).stdout
    rounds = []
    for line in out.split("\n"):
        if line.startswith("ns "):
            _, ns, _, ops = line.split()
            rounds.append((int(ns), int(ops)))
    return rounds


def median_rate(rounds):
    """ops per second of the median round."""
    ns, ops = sorted(rounds)[len(rounds) // 2]
    return ops / (ns / 1e9)


def pct(values, p):
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class Table:
    """The rows one session (one read path) measured, in order."""

    def __init__(self):
        self.rows = []

    def add(self, name, native, mount, unit, ratio=None, target=None, ok=None, note=""):
        self.rows.append((name, native, mount, unit, ratio, target, ok, note))


def fmt_value(v, unit):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.2f} {unit}" if v < 100 else f"{v:.0f} {unit}"


def print_tables(tables):
    """One line per metric: for each read path, native measured in its session, the
    path's figure and the ratio; then the verdicts."""
    paths = list(tables)
    names = []
    for t in tables.values():
        for r in t.rows:
            if r[0] not in names:
                names.append(r[0])
    byname = {p: {r[0]: r for r in t.rows} for p, t in tables.items()}
    w = max(len(n) for n in names)
    head = f"{'metric':<{w}}"
    for p in paths:
        head += f"  {'native':>12}  {p:>12}  {'ratio':>6}"
    head += f"  {'target':<10} " + " ".join(f"{p:<11}" for p in paths)
    print(head)
    for name in names:
        first = next(byname[p][name] for p in paths if name in byname[p])
        unit, target = first[3], first[5]
        line = f"{name:<{w}}"
        verdicts, notes = [], []
        for p in paths:
            r = byname[p].get(name)
            if r is None:
                line += f"  {'-':>12}  {'-':>12}  {'-':>6}"
                verdicts.append("")
                continue
            line += (f"  {fmt_value(r[1], unit):>12}  {fmt_value(r[2], unit):>12}  "
                     f"{'-' if r[4] is None else f'{r[4]:.2f}':>6}")
            verdicts.append("" if r[6] is None else ("PASS" if r[6] else "MISS"))
            if r[7]:
                notes.append(f"{p}: {r[7]}" if len(paths) > 1 else r[7])
        line += f"  {target or '':<10} " + " ".join(f"{v:<11}" for v in verdicts)
        print(line.rstrip() + ("  " + "; ".join(notes) if notes else ""))


def size_label(n):
    return f"{n >> 30} GiB" if n % (1 << 30) == 0 else f"{n >> 20} MiB"


def bench_reads(a, t, native, mount, store):
    """Per round and side: drop caches, read (cold), read again (warm), and a third time."""
    big_n = os.path.join(native, "big", "v1", "model.bin")
    big_m = os.path.join(mount, "big", "v1", "model.bin")
    big_s = os.path.join(store, "big", "v1", "model.bin")
    size = os.path.getsize(big_n)
    what = size_label(size)
    sides = (("native", big_n), ("mount", big_m))
    if IS_ROOT:
        # One untimed pass each first, so that both files start from the same state in
        # whatever caches sit below this machine (a virtual disk's host cache).
        for _, path in sides:
            drop_caches()
            run_timed(read_cmd("dd", path))
    for kind, label in (("dd", "dd bs=1M"), ("cat", "cat (128 KiB)")):
        times = {(side, n): [] for side, _ in sides for n in range(3)}
        for r in range(a.repeat):
            for side, path in (sides if r % 2 == 0 else sides[::-1]):
                if IS_ROOT:
                    drop_caches()
                for n in range(3):
                    times[(side, n)].append(run_timed(read_cmd(kind, path)))

        def mibs(side, n):
            return size / statistics.median(times[(side, n)]) / MiB

        def spread(side, n):
            v = [size / x / MiB for x in times[(side, n)]]
            return f"{min(v):.0f}-{max(v):.0f}"

        if IS_ROOT:
            nat, mnt = mibs("native", 0), mibs("mount", 0)
            t.add(f"seq read {what} cold, {label}", nat, mnt, "MiB/s", mnt / nat,
                  f">= {TARGET_COLD}", mnt / nat >= TARGET_COLD,
                  f"(runs: native {spread('native', 0)}, mount {spread('mount', 0)})")
        else:
            t.add(f"seq read {what} cold, {label}", None, None, "", note="skipped: needs root")
        nat, mnt = mibs("native", 1), mibs("mount", 1)
        t.add(f"seq read {what} warm (2nd read), {label}", nat, mnt, "MiB/s", mnt / nat,
              f">= {TARGET_WARM}", mnt / nat >= TARGET_WARM)
        nat, mnt = mibs("native", 2), mibs("mount", 2)
        t.add(f"seq read {what} warm (3rd read), {label}", nat, mnt, "MiB/s", mnt / nat,
              note="(steady state, informational)")
        if IS_ROOT:
            # The mount's own ceiling, free of the disk: FUSE cache dropped, backing file cached.
            v = []
            for r in range(a.repeat):
                drop_caches()
                run_timed(read_cmd("dd", big_s))
                v.append(size / run_timed(read_cmd(kind, big_m)) / MiB)
            t.add(f"seq read {what} FUSE-cold, backing cached, {label}", None,
                  statistics.median(v), "MiB/s",
                  note="(transfer ceiling of the FUSE path, informational)")


def resident(*paths):
    """Bytes of these files in the page cache (fincore), or None."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *paths],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return sum(int(x) for x in out.stdout.split())


def bench_pagecache(a, t, native, mount, store):
    big_n = os.path.join(native, "big", "v1", "model.bin")
    big_m = os.path.join(mount, "big", "v1", "model.bin")
    big_s = os.path.join(store, "big", "v1", "model.bin")
    size = os.path.getsize(big_n)
    if not IS_ROOT:
        t.add("peak extra page cache / bytes read", None, None, "", note="skipped: needs root")
        return
    res = {}
    # Other processes move Cached too (a build, a test run): the median of the rounds
    # counts, and fincore, which sees only these files, cross-checks it.
    # In passthrough mode fincore's mmap of the mount's file maps the backing file
    # itself: there is no FUSE copy, and counting both would count it twice.
    mfiles = (big_s,) if getattr(a, "read_path", "") == "passthrough" else (big_m, big_s)
    for side, path, files in (("native", big_n, (big_n,)), ("mount", big_m, mfiles)):
        peaks = [peak_cache(read_cmd("dd", path)) for _ in range(min(a.repeat, 3))]
        res[side] = statistics.median(p[0] for p in peaks) / size
        held = resident(*files)
        res[side + "_files"] = held / size if held is not None else float("nan")
    t.add("peak extra page cache / bytes read", res["native"], res["mount"], "x", None,
          f"<= {TARGET_PAGECACHE}", res["mount"] <= TARGET_PAGECACHE,
          f"(in the files after the read, fincore: {res['native_files']:.2f} / "
          f"{res['mount_files']:.2f}, mount = " + ("backing file" if len(mfiles) == 1 else
                                                   "FUSE file + backing file") + ")")


def bench_meta(a, t, native, mount, helper):
    def both(fn):
        fn(native)
        fn(mount)  # warm-up
        vals = {"native": [], "mount": []}
        for r in range(a.repeat):
            order = (("native", native), ("mount", mount))
            for side, root in (order if r % 2 == 0 else order[::-1]):
                vals[side].append(fn(root))
        return statistics.median(vals["native"]), statistics.median(vals["mount"])

    def rate_row(name, nat, mnt, unit="op/s"):
        t.add(name, nat, mnt, unit, mnt / nat, f">= {TARGET_META}", mnt / nat >= TARGET_META)

    def time_row(name, nat, mnt):
        t.add(name, nat * 1e3, mnt * 1e3, "ms", nat / mnt, f">= {TARGET_META}",
              nat / mnt >= TARGET_META)

    nat, mnt = both(lambda root: median_rate(helper_rounds(
        helper, "stat", os.path.join(root, "files", "v1"), 5)))
    rate_row(f"stat, {a.files} files (C loop)", nat, mnt)
    nat, mnt = both(lambda root: median_rate(helper_rounds(
        helper, "stat", os.path.join(root, "small"), 5)))
    rate_row(f"stat, {a.versions} version dirs (C loop)", nat, mnt)
    nat, mnt = both(lambda root: run_timed(["ls", "-l", os.path.join(root, "small")]))
    time_row(f"ls -l, dir of {a.versions} versions", nat, mnt)
    nat, mnt = both(lambda root: run_timed(["ls", "-l", os.path.join(root, "files", "v1")]))
    time_row(f"ls -l, dir of {a.files} files", nat, mnt)
    nat, mnt = both(lambda root: median_rate(helper_rounds(
        helper, "readlink", os.path.join(root, "small", "current"), 20000, 5)))
    rate_row("readlink of an alias (C loop)", nat, mnt)
    nat, mnt = both(lambda root: run_timed(["find", root]))
    t.add("find over the whole tree", nat * 1e3, mnt * 1e3, "ms", nat / mnt, f">= {TARGET_FIND}",
          nat / mnt >= TARGET_FIND, "(an OPENDIR and a RELEASEDIR per directory)")


def bench_mmap(a, t, native, mount):
    """A model loader's pattern: map the file and touch every page in order, or random pages."""
    big_n = os.path.join(native, "big", "v1", "model.bin")
    big_m = os.path.join(mount, "big", "v1", "model.bin")
    what = size_label(os.path.getsize(big_n))
    for how, label in (("seq", f"mmap {what}, every page in order"),
                       ("rand", f"mmap {what}, {MMAP_RANDOM_PAGES} random pages")):
        vals = {(side, n): [] for side in ("native", "mount") for n in range(2)}
        for r in range(a.repeat):
            order = (("native", big_n), ("mount", big_m))
            for side, path in (order if r % 2 == 0 else order[::-1]):
                if IS_ROOT:
                    drop_caches()
                for n in range(2):
                    vals[(side, n)].append(median_rate(helper_rounds(
                        a.helper, "mmap", path, how, MMAP_RANDOM_PAGES, a.seed + r)))
        for n, state in ((0, "cold"), (1, "warm")):
            if n == 0 and not IS_ROOT:
                t.add(f"{label}, cold", None, None, "", note="skipped: needs root")
                continue
            nat = statistics.median(vals[("native", n)])
            mnt = statistics.median(vals[("mount", n)])
            t.add(f"{label}, {state}", nat / 1e3, mnt / 1e3, "kpage/s", mnt / nat,
                  f">= {TARGET_MMAP}", mnt / nat >= TARGET_MMAP)


def firstbyte_lat(helper, d):
    out = subprocess.run([helper, "firstbyte", d, "1"], check=True, capture_output=True,
                         text=True).stdout
    return [int(line.split()[1]) for line in out.split("\n") if line.startswith("lat ")]


def bench_open(a, t, native, mount):
    """Latency from open() to the first byte of a sealed file (1 KiB files, one directory)."""
    res = {}
    for side, root in (("native", native), ("mount", mount)):
        d = os.path.join(root, "files", "v1")
        if IS_ROOT:
            drop_caches()
            cold = firstbyte_lat(a.helper, d)
            res[(side, "cold")] = (statistics.median(cold) / 1e3, pct(cold, 99) / 1e3)
        warm = []
        for _ in range(max(1, a.repeat // 2)):
            warm += firstbyte_lat(a.helper, d)
        res[(side, "warm")] = (statistics.median(warm) / 1e3, pct(warm, 99) / 1e3)
    for state in ("cold", "warm"):
        if (("native", state)) not in res:
            t.add(f"open + first byte, {state}", None, None, "", note="skipped: needs root")
            continue
        for i, q in ((0, "p50"), (1, "p99")):
            nat, mnt = res[("native", state)][i], res[("mount", state)][i]
            t.add(f"open + first byte of a sealed file, {state}, {q}", nat, mnt, "us", nat / mnt,
                  note="(a time: ratio = native / mount)" if i == 0 and state == "cold" else "")


def promote_ln(model_dir, n, versions):
    lat = []
    for i in range(n):
        v = f"v{(i * 7) % versions + 1}"
        lat.append(run_timed(["ln", "-sfn", v, "current"], cwd=model_dir))
    return lat


def promote_inproc(model_dir, n, versions):
    lat = []
    tmp = os.path.join(model_dir, ".bench-promote")
    cur = os.path.join(model_dir, "current")
    for i in range(n):
        v = f"v{(i * 7 + 3) % versions + 1}"
        t0 = time.perf_counter()
        os.symlink(v, tmp)
        os.rename(tmp, cur)
        lat.append(time.perf_counter() - t0)
    return lat


def bench_promote(a, t, native, mount):
    for label, fn in (("ln -sfn vN current (a process)", promote_ln),
                      ("symlink+rename in-process", promote_inproc)):
        res = {}
        for side, root in (("native", native), ("mount", mount)):
            d = os.path.join(root, "small")
            fn(d, 5, a.versions)  # warm-up
            lat = fn(d, a.promotions, a.versions)
            res[side] = (statistics.median(lat) * 1e3, pct(lat, 99) * 1e3)
        is_ln = fn is promote_ln
        t.add(f"{label}, p50", res["native"][0], res["mount"][0], "ms")
        t.add(f"{label}, p99", res["native"][1], res["mount"][1], "ms", None,
              f"<= {TARGET_PROMOTE_P99_MS} ms" if is_ln else None,
              res["mount"][1] <= TARGET_PROMOTE_P99_MS if is_ln else None)
        os.symlink(f"v{a.versions}", os.path.join(native, "small", ".bench-final"))
        os.rename(os.path.join(native, "small", ".bench-final"),
                  os.path.join(native, "small", "current"))


def machine_line(work, modelfs):
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    fuse = "?"
    for line in subprocess.run(["ldd", modelfs], capture_output=True, text=True).stdout.split("\n"):
        if "libfuse3" in line and "=>" in line:
            fuse = os.path.realpath(line.split("=>")[1].split("(")[0].strip())
            fuse = os.path.basename(fuse).replace("libfuse3.so.", "")
    fstype = "?"
    best = ""
    with open("/proc/mounts") as f:
        for line in f:
            p = line.split()
            if work.startswith(p[1].rstrip("/") + "/") and len(p[1]) > len(best):
                best, fstype = p[1], f"{p[2]} on {p[0]}"
    with open("/proc/sys/fs/pipe-max-size") as f:
        pipe_max = int(f.read())
    return (f"{os.cpu_count()} cores, {mem / (1 << 30):.1f} GiB RAM, kernel {platform.release()}, "
            f"libfuse {fuse}, {fstype}, pipe-max-size {pipe_max >> 10} KiB")


def parse():
    p = argparse.ArgumentParser(prog="bench/run fuse", description=__doc__.split("\n")[0])
    p.add_argument("--modelfs", required=True, help="the modelfs binary (bench/run passes it)")
    p.add_argument("--helper", required=True, help="bench_fuse_meta (bench/run passes it)")
    p.add_argument("--dir", help="work directory (default: a new one under /var/tmp; it must "
                   "be on the filesystem to measure); kept and reused with --keep")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--big-mib", type=int, default=1024, help="size of the large model (MiB)")
    p.add_argument("--versions", type=int, default=1000)
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--small-bytes", type=int, default=16384, help="size of each small model")
    p.add_argument("--file-bytes", type=int, default=1024, help="size of each small file")
    p.add_argument("--promotions", type=int, default=200, help="ln -sfn promotions (>= 200)")
    p.add_argument("--repeat", type=int, default=5, help="rounds per figure (the median counts)")
    p.add_argument("--only", default="read,pagecache,mmap,open,meta,promote",
                   help="comma-separated sections to run")
    p.add_argument("--paths", default="passthrough,splice",
                   help="read paths to measure, one daemon session each (serve --read-path)")
    p.add_argument("--serve-arg", action="append", default=[],
                   help="extra argument for modelfs serve (repeatable)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def run_session(a, path, work, store, native, only):
    """One daemon on `path`'s read path; every selected section; its Table."""
    t = Table()
    daemon = Daemon(a.modelfs, store, work, ["--read-path", path] + a.serve_arg)
    try:
        daemon.start(timeout=900)
        said = [line for line in daemon.log_tail(200).split("\n") if "read path:" in line]
        if said:  # this session's, the last one in the log
            print(f"{path}: {said[-1].split('read path:', 1)[1].strip()}")
        a.read_path = path
        mount = daemon.mnt
        if "read" in only:
            bench_reads(a, t, native, mount, store)
        if "pagecache" in only:
            bench_pagecache(a, t, native, mount, store)
        if "mmap" in only:
            bench_mmap(a, t, native, mount)
        if "open" in only:
            bench_open(a, t, native, mount)
        if "meta" in only:
            bench_meta(a, t, native, mount, a.helper)
        if "promote" in only:
            bench_promote(a, t, native, mount)
    finally:
        daemon.stop()
        if daemon.mounted():
            log(f"warning: {daemon.mnt} is still mounted")
    return t


def main():
    a = parse()
    base = a.dir or tempfile.mkdtemp(prefix="modelfs-bench-fuse-", dir="/var/tmp")
    work = os.path.abspath(base)
    os.makedirs(work, exist_ok=True)
    only = set(a.only.split(","))
    paths = [p for p in a.paths.split(",") if p]
    tables = {}

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        native, store = build_trees(work, a)
        print(f"modelfs FUSE benchmark: {machine_line(work, a.modelfs)}")
        load = os.getloadavg()[0]
        print(f"load average at start: {load:.2f}"
              + ("  (other work is running: expect noisy figures)" if load > 0.5 else ""))
        print(f"tree: {a.big_mib} MiB model, {a.versions} versions of a {a.small_bytes}-byte "
              f"model, {a.files} files of {a.file_bytes} bytes; median of {a.repeat} rounds; "
              "ratio = mount speed / native speed, against native measured in the same session")
        if not IS_ROOT:
            print("not root: cold reads and page-cache figures are skipped (drop_caches)")
        for path in paths:
            tables[path] = run_session(a, path, work, store, native, only)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        print()
        print_tables(tables)
        sys.stdout.flush()
    finally:
        if not a.keep:
            subprocess.run(["rm", "-rf", "--one-file-system", work])
        else:
            log(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
