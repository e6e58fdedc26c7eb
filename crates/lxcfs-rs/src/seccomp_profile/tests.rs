#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn base() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "sysinfo", "write"], "action": "SCMP_ACT_ALLOW", "comment": ""},
            {"names": ["sysinfo"], "action": "SCMP_ACT_LOG"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.20"}},
            {"names": ["old_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]
    })
}

fn names(v: &Value) -> Vec<Vec<String>> {
    v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn sysinfo_moves_to_a_notify_rule_and_nothing_else_changes() {
    let p = with_notify(base(), "/run/x.sock").unwrap();
    assert_eq!(p["listenerPath"], "/run/x.sock");
    let n = names(&p);
    assert_eq!(n[0], ["read", "write"]);
    assert_eq!(
        n.iter().filter(|r| r.contains(&"sysinfo".into())).count(),
        1
    );
    let last = p["syscalls"].as_array().unwrap().last().unwrap();
    assert_eq!(last["names"], json!(["sysinfo"]));
    assert_eq!(last["action"], "SCMP_ACT_NOTIFY");
    assert_eq!(p["defaultErrnoRet"], 38);
    assert_eq!(
        p["syscalls"].as_array().unwrap().len(),
        6,
        "the sysinfo-only rule went"
    );
}

#[test]
fn not_a_profile_is_refused() {
    assert!(with_notify(json!([]), "/s").is_err());
    assert!(with_notify(json!({"syscalls": []}), "/s").is_err());
    assert!(with_notify(json!({"defaultAction": "SCMP_ACT_ALLOW"}), "/s").is_err());
}

#[test]
fn oci_resolves_arch_caps_and_kernel() {
    let p = with_notify(base(), "/run/x.sock").unwrap();
    let t = Target {
        arch: "SCMP_ARCH_X86_64",
        kernel: Some((6, 18)),
        caps: vec!["CAP_KILL".into()],
    };
    let o = to_oci(&p, &t).unwrap();
    assert_eq!(
        o["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    assert_eq!(o["listenerPath"], "/run/x.sock");
    let n = names(&o);
    assert!(n.contains(&vec!["arch_prctl".to_string()]));
    assert!(
        !n.contains(&vec!["ptrace".to_string()]),
        "needs CAP_SYS_PTRACE"
    );
    assert!(!n.contains(&vec!["new_call".to_string()]), "needs 6.20");
    assert!(n.contains(&vec!["old_call".to_string()]));
    assert!(
        o["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("comment").is_none())
    );

    let t = Target {
        arch: "SCMP_ARCH_AARCH64",
        kernel: Some((7, 0)),
        caps: vec!["CAP_SYS_PTRACE".into(), "CAP_SYS_ADMIN".into()],
    };
    let o = to_oci(&p, &t).unwrap();
    assert_eq!(
        o["architectures"],
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    );
    let n = names(&o);
    assert!(!n.contains(&vec!["arch_prctl".to_string()]));
    assert!(n.contains(&vec!["ptrace".to_string()]));
    assert!(n.contains(&vec!["new_call".to_string()]));
    assert!(
        !n.contains(&vec!["old_call".to_string()]),
        "excluded by CAP_SYS_ADMIN"
    );
}

#[test]
fn the_default_socket_is_the_agents() {
    assert_eq!(args::AGENT_SOCKET, crate::agent::DEFAULT_SOCKET);
}

/// The installed default profile (Podman's, from containers-common) turns into a
/// profile with exactly one sysinfo rule, and into an OCI object runc accepts (the
/// end-to-end tests run containers with it).
#[test]
fn the_installed_default_profile_converts() {
    let text = std::fs::read_to_string(args::DEFAULT_BASE)
        .expect("containers-common's seccomp.json (installed with podman)");
    let p = with_notify(serde_json::from_str(&text).unwrap(), "/s").unwrap();
    let o = to_oci(
        &p,
        &Target {
            arch: "SCMP_ARCH_X86_64",
            kernel: Some((6, 18)),
            caps: args::RUNC_SPEC_CAPS.iter().map(|c| c.to_string()).collect(),
        },
    )
    .unwrap();
    let n = names(&o);
    assert_eq!(
        n.iter().filter(|r| r.contains(&"sysinfo".into())).count(),
        1
    );
    assert!(n.iter().flatten().any(|c| c == "read"));
}
