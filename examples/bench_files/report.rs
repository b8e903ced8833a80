//! The Markdown report: the method, the open table, the write table, and
//! what every column means.

use std::fmt::Write as _;

use crate::bench_util::pct;
use crate::bench_util::system::package_version;
use crate::runs::{Caught, Run, Tool};
use crate::{describe_path, Options, STORM_COMM};

/// "64 B", "1 KiB", "1.5 KiB".
fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Per 1000 of `events`, the tracer's CPU milliseconds ("n/a" for none).
fn cpu_per_k(run: &Run, events: u64, clk_tck: u64) -> String {
    if events == 0 {
        "n/a".into()
    } else {
        format!("{:.1}", run.cpu_ms(clk_tck) * 1000.0 / events as f64)
    }
}

pub fn method(out: &mut String, opts: &Options, path: &str) {
    let _ = writeln!(
        out,
        "`{STORM_COMM}` (bench/fstorm.c) runs one worker per online CPU, each pinned to its CPU, each making one \
syscall after another through syscall(2). **Open storm** ({} s): openat(AT_FDCWD, PATH, O_RDONLY) then close, PATH \
being an empty file of {}. Three runs in a row: no tracer; proctap's `dump --files` (no filter: it reports every \
process' opens, and execs and exits too); libbpf-tools' `opensnoop` ({}) with its defaults and no filter. Both write \
their stdout to a file in /dev/shm, and the storm's events are counted from it (opensnoop leaves no mark in its \
output for the events it dropped). **Stdout write storm** ({} s per size): write(1, buf, N) of N printable bytes, \
the storm's stdout on /dev/null; at every size, no tracer, then `dump --stdio --comm {STORM_COMM} --write-max {}` \
with its own stdout on /dev/null too (at full speed its JSON would fill /dev/shm): what it captured is counted from \
its final stats, and it is taken as settled once its CPU time stops growing. opensnoop does not capture writes and \
libbpf-tools has no tool that captures stdout, so the write storm has no peer. kernel.bpf_stats_enabled was 1 for \
every run, which adds a clock read before and after every BPF program run.\n",
        opts.seconds,
        describe_path(path),
        package_version(&opts.opensnoop),
        opts.write_seconds,
        opts.write_max()
    );
}

// ---- opens -----------------------------------------------------------------------

fn open_row(r: &Run, base: f64, clk_tck: u64) -> String {
    let rate = r.storm.rate();
    let mut row = format!("| {} | {:.0} | {:.3} |", r.tool.label(), rate, rate / base);
    let Caught::Opens(c) = &r.caught else {
        row.push_str(" — | — | — | — | — | — |");
        return row;
    };
    let _ = write!(
        row,
        " {} ({} / {}) | {} | {:.0} | {} | {:.1} | {} |",
        pct(c.events, r.storm.ops),
        c.events,
        r.storm.ops,
        pct(c.whole, c.events),
        r.kernel_ns() as f64 / r.storm.ops as f64,
        cpu_per_k(r, c.events, clk_tck),
        r.peak_rss_kib as f64 / 1024.0,
        c.lost
    );
    row
}

/// Per run: its programs' counts (those that ran), the tracer's loss report,
/// other BPF programs' runs, the CPU use.
fn notes(out: &mut String, runs: &[Run], label: impl Fn(&Run) -> String) {
    for r in runs {
        let mut note = format!("- {}: ", label(r));
        for p in r.progs.iter().filter(|p| p.run_cnt > 0) {
            let _ = write!(
                note,
                "`{}` ran {} times, {:.0} ns each; ",
                p.name,
                p.run_cnt,
                p.run_time_ns as f64 / p.run_cnt as f64
            );
        }
        let idle = r.progs.iter().filter(|p| p.run_cnt == 0).count();
        if idle > 0 {
            let _ = write!(note, "its {idle} other programs did not run; ");
        }
        let _ = match r.others {
            (0, _) => write!(note, "no other BPF program ran; "),
            (n, ns) => {
                write!(note, "other BPF programs (not the tracer's) ran {n} times, {:.1} ms in all; ", ns as f64 / 1e6)
            }
        };
        if !r.loss_note.is_empty() {
            let _ = write!(note, "{}; ", r.loss_note);
        }
        let _ = writeln!(note, "{}.", r.cpu_use);
        out.push_str(&note);
    }
    out.push('\n');
}

/// The ratios the issue asks for: proctap's in-kernel cost per open over
/// opensnoop's, and each tracer's open rate over the untraced one.
fn open_summary(out: &mut String, runs: &[Run]) {
    let find = |tool: Tool| runs.iter().find(|r| r.tool == tool);
    let per_open = |r: &Run| r.kernel_ns() as f64 / r.storm.ops as f64;
    let (Some(none), Some(pt), Some(os)) = (find(Tool::None), find(Tool::Proctap), find(Tool::Opensnoop)) else {
        return;
    };
    let _ = writeln!(
        out,
        "proctap's in-kernel ns per open over opensnoop's: {:.3}× ({:.0} / {:.0} ns; goal: ≤ 0.1×). \
Open rate under tracing, as a fraction of the untraced rate: proctap {:.3}, opensnoop {:.3}.\n",
        per_open(pt) / per_open(os),
        per_open(pt),
        per_open(os),
        pt.storm.rate() / none.storm.rate(),
        os.storm.rate() / none.storm.rate()
    );
}

pub fn open_table(out: &mut String, runs: &[Run], path: &str, clk_tck: u64) {
    let Some(base) = runs.iter().find(|r| r.tool == Tool::None).map(|r| r.storm.rate()) else { return };
    let _ = writeln!(out, "### Open storm ({} bytes of path)\n", path.len());
    out.push_str(
        "| tool | opens/s | vs no tracer | events / opens | events with whole path | in-kernel ns per open | tracer CPU ms per 1000 events | peak RSS MiB | lost (tracer's count) |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in runs {
        out.push_str(&open_row(r, base, clk_tck));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nopens/s: opens that returned an fd over the storm's elapsed seconds. \
vs no tracer: opens/s over the no-tracer run's opens/s. \
events / opens: open events in the tracer's output file with comm `{STORM_COMM}`, an fd (not an error) and the storm's \
path or a beginning of it (a cut path, or an empty one when its bytes were lost), over the opens performed. \
events with whole path: those events with all {} bytes of the path and no truncation mark (proctap: \
`path_truncated`, `data_lost`), over the events. \
in-kernel ns per open: growth of bpf_stats `run_time_ns` (`bpftool -j prog show`) over the storm, summed over the \
tracer's programs, over the opens performed (the programs run for every process' opens, including other processes \
running meanwhile). \
tracer CPU: the tracer's utime+stime (/proc/PID/stat) from just before the storm until its output stopped growing \
after it (or grew by less than 16 KiB per 250 ms: other processes' opens), per 1000 captured events. \
peak RSS: the tracer's VmHWM (/proc/PID/status) just before it was stopped. \
lost: open events the tracer said it lost, over every process (proctap: `meta_lost` + `not_followed` of `detail.open` \
in its final stats; opensnoop: the sum of its \"Lost N events\" lines on stderr).\n",
        path.len()
    );
    notes(out, runs, |r| r.tool.label().to_string());
    open_summary(out, runs);
}

// ---- writes ------------------------------------------------------------------------

/// Writes and bytes the storm made to stdout and stderr (what `--stdio`
/// captures): the workers' writes plus its stderr lines, each one write.
fn stdio_writes(r: &Run) -> (u64, u64) {
    let lines = r.storm_stderr.lines().count() as u64;
    (r.storm.ops + lines, r.storm.bytes + r.storm_stderr.len() as u64)
}

fn write_row(r: &Run, base: f64, clk_tck: u64) -> String {
    let rate = r.storm.rate();
    let size = size_label(r.size.unwrap_or(0));
    let mut row = format!("| {size} | {} | {:.0} | {:.3} |", r.tool.label(), rate, rate / base);
    let Caught::Writes(c) = &r.caught else {
        row.push_str(" — | — | — | — | — | — | — | — | — |");
        return row;
    };
    let (writes, bytes) = stdio_writes(r);
    let _ = write!(
        row,
        " {} ({} / {}) | {} | {:.1} | {:.0} | {} | {:.1} | {} | {} | {} |",
        pct(c.delivered, writes),
        c.delivered,
        writes,
        pct(c.data_bytes, bytes),
        c.data_bytes as f64 / 1048576.0 / r.storm.seconds,
        r.kernel_ns() as f64 / r.storm.ops as f64,
        cpu_per_k(r, c.delivered, clk_tck),
        r.peak_rss_kib as f64 / 1024.0,
        c.truncated,
        c.data_lost,
        c.meta_lost + c.not_followed
    );
    row
}

pub fn write_table(out: &mut String, opts: &Options, runs: &[Run], clk_tck: u64) {
    out.push_str("### Stdout write storm\n\n");
    out.push_str(
        "| write size | tool | writes/s | vs no tracer | writes captured / performed | bytes captured / written | captured MiB/s | in-kernel ns per write | tracer CPU ms per 1000 writes | peak RSS MiB | truncated | without bytes | lost |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in runs {
        let base = runs.iter().find(|b| b.tool == Tool::None && b.size == r.size).map_or(f64::NAN, |b| b.storm.rate());
        out.push_str(&write_row(r, base, clk_tck));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nwrites/s: writes that succeeded over the storm's elapsed seconds. \
vs no tracer: writes/s over the no-tracer run's at the same size. \
writes captured / performed: write events delivered to dump (`detail.write.delivered` of its final stats, with or \
without their bytes), over the writes the storm made to stdout and stderr: the workers' writes plus its totals line on \
stderr (one write, captured too). \
bytes captured / written: `detail.write.data_bytes` (bytes the kernel put in the data pages) over the bytes of those \
writes. captured MiB/s: `data_bytes` over the storm's elapsed seconds. \
in-kernel ns per write: growth of bpf_stats `run_time_ns` over the storm, summed over dump's programs (every \
process' writes run them; only the storm's pass the `--comm` filter), over the workers' writes. \
tracer CPU: dump's utime+stime from just before the storm until it went idle after it (its threads' CPU time grew by \
less than 1 ms in each of two 250 ms windows in a row), per 1000 writes captured. \
peak RSS: dump's VmHWM just before it was stopped. \
truncated: `truncated`, events whose bytes are fewer than the write's: cut at the cap ({} bytes), or a buffer \
that could not be read. without bytes: `data_lost`, events sent without their bytes because the data pages were \
full (the consumer had not released them yet). lost: `meta_lost` + `not_followed`, writes not reported at all.\n",
        opts.write_max()
    );
    notes(out, runs, |r| format!("{}, {}", size_label(r.size.unwrap_or(0)), r.tool.label()));
}
