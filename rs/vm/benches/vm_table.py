#!/usr/bin/env python3
"""The proctap-vm benchmark's table for BENCHMARKS.md.

Usage: vm_table.py LOG CRITERION_DIR COMMAND

LOG is the output of `cargo bench -p proctap-vm --bench vm` (its
`vm-bench:` lines say which contenders ran and how); CRITERION_DIR is
target/criterion, whose */new/estimates.json hold each benchmark's mean.
Only the benchmarks this run reported are read, so a contender skipped
now never shows an earlier run's number. Prints markdown on stdout.
"""
import datetime
import json
import os
import platform
import re
import sys

PROGRAMS = ["loop_heavy", "map_heavy", "packet_parse"]
# A program that returns at once: each engine's fixed cost of a run (not in
# the goals; the kernel's is the baseline its numbers have taken out).
BASELINE = "empty"
CONTENDERS = [
    ("ours_interp", "proctap-vm interpreter"),
    ("ours_jit", "proctap-vm JIT"),
    ("rbpf_interp", "rbpf interpreter"),
    ("rbpf_jit", "rbpf JIT"),
    ("kernel_jit", "kernel JIT"),
]


def ran(log):
    """The benchmark ids (group/function) criterion reported in LOG."""
    ids = set()
    for m in re.finditer(r"^([a-z_]+/[a-z_]+)\s+time:", log, re.M):
        ids.add(m.group(1))
    # Long ids are printed on their own line, the times on the next.
    for m in re.finditer(r"^([a-z_]+/[a-z_]+)\n\s+time:", log, re.M):
        ids.add(m.group(1))
    return ids


def mean_ns(criterion, bench_id):
    path = os.path.join(criterion, bench_id, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def fmt_ns(ns):
    if ns is None:
        return "—"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


def verdict(value, limit, strict):
    if value is None:
        return "not measured"
    ok = value < limit if strict else value <= limit
    return "met" if ok else "**missed**"


def main():
    log_path, criterion, command = sys.argv[1:4]
    with open(log_path) as f:
        log = f.read()
    ids = ran(log)
    t = {p: {c: mean_ns(criterion, f"{p}/{c}") if f"{p}/{c}" in ids else None for c, _ in CONTENDERS}
         for p in PROGRAMS}
    load = mean_ns(criterion, "load/bench_load") if "load/bench_load" in ids else None
    notes = [line[len("vm-bench: "):] for line in log.splitlines() if line.startswith("vm-bench: ")]

    out = ["## proctap-vm: interpreter and JIT against rbpf and the kernel (criterion)", ""]
    out.append(f"`{command}` · {datetime.date.today().isoformat()} · {platform.release()}")
    out.append("")
    out.append("Mean time of one run of each program (ns per run); — where a contender does not run it.")
    out.append("")
    out.append("| program | " + " | ".join(name for _, name in CONTENDERS) + " | our JIT / kernel JIT | our interp. / rbpf interp. |")
    out.append("|---|" + "---:|" * (len(CONTENDERS) + 2))
    jit_ratios, interp_ratios = [], []
    for p in PROGRAMS:
        row = t[p]
        jr = row["ours_jit"] / row["kernel_jit"] if row["ours_jit"] and row["kernel_jit"] else None
        ir = row["ours_interp"] / row["rbpf_interp"] if row["ours_interp"] and row["rbpf_interp"] else None
        jit_ratios.append(jr)
        interp_ratios.append(ir)
        cells = [fmt_ns(row[c]) for c, _ in CONTENDERS]
        if row["rbpf_interp"] is None and p == "map_heavy":
            cells[2] = cells[3] = "no maps"
        out.append(f"| {p} | " + " | ".join(cells) + f" | {ratio(row['ours_jit'], row['kernel_jit'])}"
                   f" | {ratio(row['ours_interp'], row['rbpf_interp'])} |")
    e = {c: mean_ns(criterion, f"{BASELINE}/{c}") if f"{BASELINE}/{c}" in ids else None for c, _ in CONTENDERS}
    # The kernel's times are net of its baseline run (its fixed cost taken
    # out); ours net of our empty run compare the generated code alone.
    net_ratios = []
    for p in PROGRAMS:
        ours, kernel, fixed = t[p]["ours_jit"], t[p]["kernel_jit"], e["ours_jit"]
        if ours and kernel and fixed is not None:
            net_ratios.append(max(ours - fixed, 0.0) / kernel)
    if any(e.values()):
        cells = [fmt_ns(e[c]) if c != "kernel_jit" else "baseline" for c, _ in CONTENDERS]
        out.append(f"| {BASELINE} (a run's fixed cost) | " + " | ".join(cells) + " | | |")
    out.append("")
    worst_jit = max((r for r in jit_ratios if r is not None), default=None)
    worst_interp = max((r for r in interp_ratios if r is not None), default=None)
    out.append("| goal | measured | |")
    out.append("|---|---:|---|")
    out.append(f"| JIT within 2× of the kernel's JIT (worst program) | "
               f"{'—' if worst_jit is None else f'{worst_jit:.2f}×'} | {verdict(worst_jit, 2.0, False)} |")
    worst_net = max(net_ratios, default=None)
    out.append(f"| the same, our JIT net of its empty run as the kernel's is of its own (worst program) | "
               f"{'—' if worst_net is None else f'{worst_net:.2f}×'} | {verdict(worst_net, 2.0, False)} |")
    out.append(f"| interpreter faster than rbpf's (worst program) | "
               f"{'—' if worst_interp is None else f'{worst_interp:.2f}×'} | {verdict(worst_interp, 1.0, True)} |")
    out.append(f"| load of a 1,000-instruction object (parse + maps + safety pass) | "
               f"{fmt_ns(load)} | {verdict(load, 100e3, True)} |")
    out.append("")
    for n in notes:
        out.append(f"- {n}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
