//! Random events of every kind, for the JSON and decoding parity tests.

use proptest::collection::vec;
use proptest::prelude::*;
use std::net::{Ipv6Addr, SocketAddr};

use proctap::{
    Argv, Capture, CaptureResource, CaptureStall, CaptureState, Comm, ConnClose, ConnCloseFamily, ConnCloseProtocol,
    ConnCloseRole, ConnOpen, ConnOpenFamily, ConnOpenProtocol, ConnOpenRole, Errno, Event, EventKind, Exec, ExecFailed,
    Exit, Fork, KernelStack, Lost, Mapping, MappingChange, NetData, NetDataDirection, OffCpuSample, OomKill, Open,
    StackSample, Synthetic, Trigger, TriggerReason, UserStack, WallTime, Write,
};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    // Mostly text, sometimes any byte: both JSON forms.
    prop_oneof!["[ -~\u{e9}\u{1F600}\n\t\"\\\\]{0,40}".prop_map(String::into_bytes), vec(any::<u8>(), 0..max),]
}

fn comm() -> impl Strategy<Value = Comm> {
    vec(any::<u8>(), 0..16).prop_map(|b| Comm::new(&b))
}

fn errno() -> impl Strategy<Value = Option<Errno>> {
    prop_oneof![
        Just(None),
        any::<i32>().prop_filter("not 0 or MIN", |&e| e != 0 && e != i32::MIN).prop_map(|e| Some(Errno { errno: e }))
    ]
}

fn exec() -> impl Strategy<Value = Event> {
    (
        any::<(u64, u32, u32, u32, u32, u32, u32, u64)>(),
        any::<[u64; 4]>(),
        comm(),
        bytes(300),
        bytes(600),
        any::<[bool; 4]>(),
    )
        .prop_map(|((ts_ns, pid, tid, ppid, uid, gid, ns_pid, cgroup_id), layout, comm, filename, argv, f)| {
            Event::Exec(Exec {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                parent_start_ns: 0,
                ppid,
                uid,
                gid,
                ns_pid,
                cgroup_id,
                comm,
                code_start: layout[0],
                code_end: layout[1],
                exe_dev: layout[2],
                exe_ino: layout[3],
                argv_size: argv.len() as u32,
                filename: if f[3] { Vec::new() } else { filename },
                argv: Argv(if f[3] { Vec::new() } else { argv }),
                filename_truncated: f[0],
                argv_truncated: f[1],
                argv_fault: f[2],
                data_lost: f[3],
            })
        })
}

fn exit() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, u32, u8, u64)>(), 0u8..128, any::<bool>(), comm(), any::<bool>()).prop_map(
        |((ts_ns, pid, tid, ppid, exit_code, start_ns), signal, core_dumped, comm, thread_exit)| {
            Event::Exit(Exit {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                ppid,
                comm,
                exit_code,
                signal: (signal != 0).then_some(signal),
                core_dumped,
                start_ns,
                duration_ns: 0,
                thread_exit,
            })
        },
    )
}

fn sample() -> impl Strategy<Value = Event> {
    (
        any::<(u64, u32, u32, u16, u64, bool)>(),
        comm(),
        errno(),
        errno(),
        vec(any::<u64>(), 0..20),
        vec(any::<u64>(), 0..20),
        (any::<bool>(), any::<(u64, u64, u64)>(), vec(any::<u8>(), 0..64)),
    )
        .prop_map(
            |(
                (ts_ns, pid, tid, cpu, cgroup_id, kernel_mode),
                comm,
                kerr,
                uerr,
                kstack,
                ustack,
                (data_lost, (user_ip, user_sp, user_bp), copy),
            )| {
                Event::Sample(StackSample {
                    ts_ns,
                    time: WallTime::default(),
                    pid,
                    tid,
                    proc_start_ns: 0,
                    cpu,
                    comm,
                    cgroup_id,
                    kernel_stack_error: kerr,
                    user_stack_error: uerr,
                    kernel_stack: KernelStack(if data_lost {
                        vec![]
                    } else {
                        kstack.iter().flat_map(|ip| ip.to_ne_bytes()).collect()
                    }),
                    user_stack: UserStack(if data_lost {
                        vec![]
                    } else {
                        ustack.iter().flat_map(|ip| ip.to_ne_bytes()).collect()
                    }),
                    user_ip,
                    user_sp,
                    user_bp,
                    user_stack_copy: if data_lost { vec![] } else { copy },
                    kernel_mode,
                    data_lost,
                })
            },
        )
}

fn trigger() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, u32, u64, u32)>(), any::<bool>(), comm()).prop_map(
        |((ts_ns, pid, tid, ppid, start_ns, prefix_len), child, comm)| {
            Event::Trigger(Trigger {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                reason: if child { TriggerReason::Child } else { TriggerReason::CommPrefix },
                ppid,
                start_ns,
                comm,
                prefix_len,
            })
        },
    )
}

fn fork() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, u32, u32, u32)>(), comm(), any::<bool>(), any::<(u64, u64)>()).prop_map(
        |((ts_ns, pid, tid, ppid, child_pid, child_tid), comm, thread, (proc_start_ns, child_start_ns))| {
            Event::Fork(Fork {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns,
                ppid,
                comm,
                child_pid,
                child_tid,
                child_start_ns,
                thread,
            })
        },
    )
}

fn exec_failed() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, u32, i32)>(), comm(), bytes(300), bytes(600), any::<[bool; 3]>()).prop_map(
        |((ts_ns, pid, tid, ppid, errno), comm, filename, argv, f)| {
            Event::ExecFailed(ExecFailed {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                ppid,
                comm,
                errno,
                filename: if f[2] { Vec::new() } else { filename },
                argv: Argv(if f[2] { Vec::new() } else { argv }),
                filename_truncated: f[0],
                argv_truncated: f[1],
                data_lost: f[2],
            })
        },
    )
}

fn open() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, i32, u64, u64)>(), comm(), bytes(300), any::<i64>(), 1..4096i32, any::<[bool; 3]>())
        .prop_map(|((ts_ns, pid, tid, dfd, flags, mode), comm, path, fd, errno, f)| {
            Event::Open(Open {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                comm,
                dfd,
                path: if f[2] { Vec::new() } else { path },
                flags,
                mode,
                // Exactly one of them: a return is a value or an error.
                fd: (!f[0]).then_some(fd.max(0)),
                errno: f[0].then_some(errno),
                path_truncated: f[1],
                data_lost: f[2],
            })
        })
}

fn write() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, i32, u64, u64)>(), comm(), bytes(300), any::<[bool; 2]>()).prop_map(
        |((ts_ns, pid, tid, fd, len, offset), comm, data, f)| {
            Event::Write(Write {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                comm,
                fd,
                len,
                offset,
                data: if f[1] { Vec::new() } else { data },
                truncated: f[0],
                data_lost: f[1],
            })
        },
    )
}

fn oom_kill() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u64, u64, u64, u64)>(), any::<(i32, u64, u64, u32, u32, u32)>(), comm(), comm()).prop_map(
        |((ts_ns, pid, cgroup_id, total_vm_kb, anon_rss_kb, file_rss_kb), more, comm, trigger_comm)| {
            let (oom_score_adj, shmem_rss_kb, memcg_id, uid, trigger_pid, trigger_tid) = more;
            Event::OomKill(OomKill {
                ts_ns,
                time: WallTime::default(),
                pid,
                proc_start_ns: 0,
                comm,
                cgroup_id,
                total_vm_kb,
                anon_rss_kb,
                file_rss_kb,
                oom_score_adj,
                shmem_rss_kb,
                memcg_id,
                uid,
                trigger_pid,
                trigger_tid,
                trigger_comm,
            })
        },
    )
}

/// Addresses whose IPv6 groups are often zero (runs to compress, ties
/// between runs), 0xffff (mapped) or anything.
fn sockaddr() -> impl Strategy<Value = Option<SocketAddr>> {
    let group = prop_oneof![Just(0u16), Just(0u16), Just(1u16), Just(0xffffu16), any::<u16>()];
    prop_oneof![
        Just(None),
        any::<([u8; 4], u16)>().prop_map(|(ip, port)| Some(SocketAddr::from((ip, port)))),
        (proptest::array::uniform8(group), any::<u16>())
            .prop_map(|(g, port)| Some(SocketAddr::from((Ipv6Addr::from(g), port)))),
    ]
}

fn conn() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, i32, u64, u64)>(), comm(), sockaddr(), sockaddr(), any::<(u64, bool, u8)>()).prop_map(
        |((ts_ns, pid, tid, fd, conn_id, received_bytes), comm, local, remote, (sent_bytes, close, pick))| {
            let time = WallTime::default();
            if close {
                let role = [ConnCloseRole::Unknown, ConnCloseRole::Client, ConnCloseRole::Server][pick as usize % 3];
                let protocol = if pick & 4 == 0 { ConnCloseProtocol::Tcp } else { ConnCloseProtocol::Udp };
                let family = if pick & 8 == 0 { ConnCloseFamily::Ipv4 } else { ConnCloseFamily::Ipv6 };
                Event::ConnClose(ConnClose {
                    ts_ns,
                    time,
                    pid,
                    tid,
                    proc_start_ns: 0,
                    comm,
                    fd,
                    conn_id,
                    role,
                    protocol,
                    family,
                    local,
                    remote,
                    sent_bytes,
                    received_bytes,
                })
            } else {
                let role = [ConnOpenRole::Unknown, ConnOpenRole::Client, ConnOpenRole::Server][pick as usize % 3];
                let protocol = if pick & 4 == 0 { ConnOpenProtocol::Tcp } else { ConnOpenProtocol::Udp };
                let family = if pick & 8 == 0 { ConnOpenFamily::Ipv4 } else { ConnOpenFamily::Ipv6 };
                Event::ConnOpen(ConnOpen {
                    ts_ns,
                    time,
                    pid,
                    tid,
                    proc_start_ns: 0,
                    comm,
                    fd,
                    conn_id,
                    role,
                    protocol,
                    family,
                    local,
                    remote,
                })
            }
        },
    )
}

fn net_data() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, i32, u64, u64)>(), comm(), bytes(300), any::<(u64, [bool; 3])>()).prop_map(
        |((ts_ns, pid, tid, fd, conn_id, pos), comm, data, (len, f))| {
            let direction = if f[2] { NetDataDirection::Send } else { NetDataDirection::Recv };
            Event::NetData(NetData {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                comm,
                fd,
                conn_id,
                direction,
                pos,
                len,
                data: if f[1] { Vec::new() } else { data },
                truncated: f[0],
                data_lost: f[1],
            })
        },
    )
}

fn lost() -> impl Strategy<Value = Event> {
    let kernel_kinds: Vec<EventKind> = EventKind::ALL.into_iter().filter(|k| *k != EventKind::Lost).collect();
    (any::<u64>(), proptest::sample::select(kernel_kinds), any::<u64>())
        .prop_map(|(ts_ns, kind, records)| Event::Lost(Lost { ts_ns, time: WallTime::default(), kind, records }))
}

fn synthetic() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, u16, u64)>(), vec(any::<u8>(), 0..200), any::<bool>()).prop_map(
        |((ts_ns, pid, tid, cpu, seq), payload, data_lost)| {
            Event::Synthetic(Synthetic {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                proc_start_ns: 0,
                cpu,
                seq,
                payload: if data_lost { vec![] } else { payload },
                data_lost,
            })
        },
    )
}

fn off_cpu() -> impl Strategy<Value = Event> {
    (
        any::<(u64, u32, u32, u16, u64, u64)>(),
        comm(),
        errno(),
        errno(),
        (vec(any::<u64>(), 0..20), vec(any::<u64>(), 0..20), any::<bool>()),
        (any::<(u64, u64, u64)>(), vec(any::<u8>(), 0..64)),
    )
        .prop_map(
            |(
                (ts_ns, pid, tid, cpu, cgroup_id, blocked_ns),
                comm,
                kerr,
                uerr,
                (kstack, ustack, data_lost),
                ((user_ip, user_sp, user_bp), copy),
            )| {
                let bytes =
                    |v: Vec<u64>| if data_lost { vec![] } else { v.iter().flat_map(|a| a.to_ne_bytes()).collect() };
                Event::Offcpu(OffCpuSample {
                    ts_ns,
                    time: WallTime::default(),
                    pid,
                    tid,
                    proc_start_ns: 0,
                    cpu,
                    comm,
                    cgroup_id,
                    blocked_ns,
                    kernel_stack_error: kerr,
                    user_stack_error: uerr,
                    user_ip,
                    user_sp,
                    user_bp,
                    kernel_stack: bytes(kstack),
                    user_stack: bytes(ustack),
                    user_stack_copy: if data_lost { vec![] } else { copy },
                    data_lost,
                })
            },
        )
}

fn mapping() -> impl Strategy<Value = Event> {
    (any::<(u64, u32, u32, u32)>(), 0u8..4, any::<(u64, u64, u64, u64, u64)>(), bytes(300), any::<bool>()).prop_map(
        |((ts_ns, pid, tid, parent_pid), change, (start, len, file_offset, dev, inode), path, data_lost)| {
            let change = [MappingChange::Mmap, MappingChange::Exec, MappingChange::Fork, MappingChange::Exit]
                [usize::from(change)];
            Event::Mapping(Mapping {
                ts_ns,
                time: WallTime::default(),
                pid,
                tid,
                change,
                parent_pid,
                start,
                len,
                file_offset,
                dev,
                inode,
                path: if data_lost { Vec::new() } else { path },
                data_lost,
            })
        },
    )
}

fn capture() -> impl Strategy<Value = Event> {
    (any::<u64>(), (any::<bool>(), 0u8..3, any::<bool>()), any::<(u32, u64, u64, u64)>(), bytes(300), any::<bool>())
        .prop_map(
            |(ts_ns, (stop, resource, full), (targets, threshold_us, window_us, stalled_us), cgroup, data_lost)| {
                Event::Capture(Capture {
                    ts_ns,
                    time: WallTime::default(),
                    state: if stop { CaptureState::Stop } else { CaptureState::Start },
                    resource: [CaptureResource::Cpu, CaptureResource::Memory, CaptureResource::Io]
                        [usize::from(resource)],
                    stall: if full { CaptureStall::Full } else { CaptureStall::Some },
                    targets,
                    threshold_us,
                    window_us,
                    stalled_us,
                    cgroup: if data_lost { Vec::new() } else { cgroup },
                    data_lost,
                })
            },
        )
}

/// An event of any kind the tests know.
/// Any event, with any process start (and an exec's parent's).
pub fn event() -> impl Strategy<Value = Event> {
    (any_kind(), any::<(u64, u64)>()).prop_map(|(mut event, (start, parent))| {
        with_starts(&mut event, start, parent);
        event
    })
}

fn with_starts(event: &mut Event, start: u64, parent: u64) {
    match event {
        Event::Exec(e) => (e.proc_start_ns, e.parent_start_ns) = (start, parent),
        Event::Exit(e) => e.proc_start_ns = start,
        Event::Synthetic(e) => e.proc_start_ns = start,
        Event::Sample(e) => e.proc_start_ns = start,
        Event::Trigger(e) => e.proc_start_ns = start,
        Event::ExecFailed(e) => e.proc_start_ns = start,
        Event::Open(e) => e.proc_start_ns = start,
        Event::Write(e) => e.proc_start_ns = start,
        Event::OomKill(e) => e.proc_start_ns = start,
        Event::ConnOpen(e) => e.proc_start_ns = start,
        Event::ConnClose(e) => e.proc_start_ns = start,
        Event::NetData(e) => e.proc_start_ns = start,
        Event::Offcpu(e) => e.proc_start_ns = start,
        _ => {}
    }
}

fn any_kind() -> impl Strategy<Value = Event> {
    prop_oneof![
        off_cpu(),
        exec(),
        exit(),
        fork(),
        exec_failed(),
        open(),
        write(),
        oom_kill(),
        conn(),
        net_data(),
        sample(),
        trigger(),
        lost(),
        synthetic(),
        mapping(),
        capture()
    ]
}
