//! What a cgroup's path says about its container: pure string logic, no I/O.
//!
//! The runtimes name the cgroups they make (with the systemd cgroup driver,
//! or with cgroupfs):
//! - docker: `/system.slice/docker-ID.scope`, `/docker/ID`;
//! - containerd (Kubernetes): `.../kubepods-burstable-podUID.slice/cri-containerd-ID.scope`,
//!   `/kubepods/burstable/podUID/ID`;
//! - CRI-O: `.../crio-ID.scope` (its `crio-conmon-ID.scope` holds the monitor,
//!   not the container);
//! - podman: `/machine.slice/libpod-ID.scope`, under a user's slice when
//!   rootless, `/libpod_parent/libpod-ID` (and `libpod-conmon-ID.scope`).
//!
//! ID is 64 lowercase hex digits. A pod's cgroup is `podUID` below a
//! `kubepods` one (`kubepods-burstable-podUID.slice`, `kubelet-kubepods-...`
//! under a kubelet's own cgroup root as KIND sets it). The UID is a UUID,
//! written with dashes by cgroupfs and with underscores by systemd (a dash
//! separates slice names there), given with dashes; a static pod's is 32 hex
//! digits (a hash of its manifest).

use serde::Serialize;

/// The container ids a cgroup path carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContainerIds {
    /// The container's id (64 hex digits): of the innermost container when
    /// they nest.
    pub container_id: Option<String>,
    /// The Kubernetes pod's UID, with dashes.
    pub pod_uid: Option<String>,
}

/// Prefixes of a container's own cgroup, and the monitors' that are not one.
const RUNTIME_PREFIXES: [&str; 4] = ["docker-", "cri-containerd-", "crio-", "libpod-"];
const MONITOR_PREFIXES: [&str; 2] = ["crio-conmon-", "libpod-conmon-"];

/// The container id and pod UID in a cgroup path (`/a/b/c`, as relative to
/// the cgroup2 root); each is None when the path does not carry it.
pub fn container_ids(path: &str) -> ContainerIds {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let container_id = parts.iter().rev().find_map(|p| container_of(p)).map(str::to_owned);
    let pod_uid = parts
        .iter()
        .position(|p| p.contains("kubepods"))
        .and_then(|first| parts[first..].iter().find_map(|p| pod_of(p)));
    ContainerIds { container_id, pod_uid }
}

/// A path component's container id.
fn container_of(part: &str) -> Option<&str> {
    let name = part.strip_suffix(".scope").unwrap_or(part);
    if MONITOR_PREFIXES.iter().any(|m| name.starts_with(m)) {
        return None;
    }
    let id = RUNTIME_PREFIXES.iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name);
    is_container_id(id).then_some(id)
}

/// A container id: 64 lowercase hex digits.
fn is_container_id(s: &str) -> bool {
    is_lower_hex(s, 64)
}

/// Exactly `len` lowercase hex digits.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A path component's pod UID, with dashes: `podUID`, alone or after a
/// dash (`kubepods-burstable-podUID.slice`).
fn pod_of(part: &str) -> Option<String> {
    let name = part.strip_suffix(".slice").unwrap_or(part);
    let at = name.rfind("pod")?; // no hex digit is a p or an o
    if at > 0 && !name[..at].ends_with('-') {
        return None;
    }
    let uid = name[at + 3..].replace('_', "-");
    (is_uuid(&uid) || is_static_pod_uid(&uid)).then_some(uid)
}

/// A static pod's UID: 32 lowercase hex digits.
fn is_static_pod_uid(s: &str) -> bool {
    is_lower_hex(s, 32)
}

/// 8-4-4-4-12 hex digits, dashes between.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "3f4b0c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
    const UID: &str = "7d3c1a2b-4e5f-4a6b-8c9d-0e1f2a3b4c5d";
    const STATIC: &str = "0d5f1c4e3b2a19087f6e5d4c3b2a1908";

    fn ids(container: Option<&str>, pod: Option<&str>) -> ContainerIds {
        ContainerIds { container_id: container.map(Into::into), pod_uid: pod.map(Into::into) }
    }

    #[test]
    fn each_runtimes_naming_gives_its_ids() {
        let systemd_uid = UID.replace('-', "_");
        let cases = [
            (format!("/system.slice/docker-{ID}.scope"), ids(Some(ID), None)),
            (format!("/docker/{ID}"), ids(Some(ID), None)),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"),
                ids(Some(ID), Some(UID)),
            ),
            (format!("/kubepods/burstable/pod{UID}/{ID}"), ids(Some(ID), Some(UID))),
            (format!("/kubepods/pod{UID}/{ID}"), ids(Some(ID), Some(UID))),
            // A static pod (kube-apiserver, etcd): its UID is a hash.
            (format!("/kubepods/burstable/pod{STATIC}/{ID}"), ids(Some(ID), Some(STATIC))),
            (format!("/kubepods.slice/kubepods-pod{STATIC}.slice/cri-containerd-{ID}.scope"), ids(Some(ID), Some(STATIC))),
            // KIND: the kubelet's cgroup root prefixes the slices.
            (
                format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"),
                ids(Some(ID), Some(UID)),
            ),
            (format!("/kubepods.slice/kubepods-pod{systemd_uid}.slice/crio-{ID}.scope"), ids(Some(ID), Some(UID))),
            (format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{systemd_uid}.slice"), ids(None, Some(UID))),
            (format!("/machine.slice/libpod-{ID}.scope"), ids(Some(ID), None)),
            (format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"), ids(Some(ID), None)),
            (format!("/libpod_parent/libpod-{ID}"), ids(Some(ID), None)),
            // Not a container: the monitors, host services, the root.
            (format!("/machine.slice/libpod-conmon-{ID}.scope"), ids(None, None)),
            (format!("/kubepods.slice/kubepods-pod{systemd_uid}.slice/crio-conmon-{ID}.scope"), ids(None, Some(UID))),
            ("/system.slice/ssh.service".into(), ids(None, None)),
            ("/".into(), ids(None, None)),
            ("".into(), ids(None, None)),
            // A pod-like name outside the kubepods tree is no pod.
            (format!("/user.slice/pod{UID}"), ids(None, None)),
        ];
        for (path, want) in cases {
            assert_eq!(container_ids(&path), want, "{path}");
        }
    }

    #[test]
    fn nested_containers_give_the_innermost() {
        let inner = "a".repeat(64);
        assert_eq!(container_ids(&format!("/docker/{ID}/docker/{inner}")).container_id.as_deref(), Some(&*inner));
    }

    #[test]
    fn near_misses_are_not_ids() {
        for path in [
            format!("/docker/{}", &ID[..63]),
            format!("/docker/{ID}0"),
            format!("/docker/{}", ID.to_uppercase()),
            format!("/system.slice/docker-{}.scope", ID.replace('3', "g")),
            format!("/kubepods/pod{}/x", &UID[..35]),
            format!("/kubepods/pod{}", &STATIC[..31]),
            format!("/kubepods/xpod{UID}"),
            format!("/kubepods/burstable-pod{UID}x"),
        ] {
            let got = container_ids(&path);
            assert_eq!(got, ids(None, None), "{path}");
        }
    }

    fn hex(n: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(b"0123456789abcdef".to_vec()), n)
            .prop_map(|v| String::from_utf8(v).unwrap())
    }

    proptest! {
        #[test]
        fn any_id_and_uid_come_back_from_every_layout(
            id in hex(64), uid in (hex(8), hex(4), hex(4), hex(4), hex(12)),
            layout in 0usize..6, qos in proptest::sample::select(vec!["besteffort", "burstable"]),
        ) {
            let uid = format!("{}-{}-{}-{}-{}", uid.0, uid.1, uid.2, uid.3, uid.4);
            let u = uid.replace('-', "_");
            let (path, pod) = match layout {
                0 => (format!("/system.slice/docker-{id}.scope"), false),
                1 => (format!("/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{u}.slice/cri-containerd-{id}.scope"), true),
                2 => (format!("/kubepods/{qos}/pod{uid}/{id}"), true),
                3 => (format!("/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{u}.slice/crio-{id}.scope"), true),
                4 => (format!("/machine.slice/libpod-{id}.scope"), false),
                _ => (format!("/docker/{id}"), false),
            };
            let got = container_ids(&path);
            prop_assert_eq!(got.container_id.as_deref(), Some(&*id));
            prop_assert_eq!(got.pod_uid, pod.then_some(uid));
        }

        #[test]
        fn hostile_paths_give_only_well_formed_ids(path in "(/[a-z0-9_.@-]{0,80}){0,8}") {
            let got = container_ids(&path);
            if let Some(id) = &got.container_id {
                prop_assert!(is_container_id(id), "{}", id);
                prop_assert!(path.contains(id.as_str()));
            }
            if let Some(uid) = &got.pod_uid {
                prop_assert!(is_uuid(uid) || is_static_pod_uid(uid), "{}", uid);
            }
        }
    }
}
