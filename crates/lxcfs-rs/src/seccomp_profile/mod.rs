//! `lxcfs-rs seccomp-profile [--oci]`: the runtime's default seccomp profile with
//! sysinfo(2) sent to the lxcfs-rs seccomp agent.
//!
//! Generated from the default profile installed on the machine (containers-common's
//! `/usr/share/containers/seccomp.json` unless `--base` names another, e.g. Docker's
//! `profiles/seccomp/default.json`), not from a copy of ours: the result follows the
//! runtime's updates (new system calls allowed, rules changed) when it is generated
//! again. Only two things change: `sysinfo` leaves whichever rule named it and gets a
//! rule of its own with `SCMP_ACT_NOTIFY`, and `listenerPath` names the agent.
//!
//! The Docker/Podman format has rules conditional on architecture, capabilities and
//! kernel version (`includes`/`excludes`) and an `archMap`; a runtime resolves them
//! when it creates a container. `--oci` resolves them the same way for this machine
//! (its architecture and kernel, and the capabilities given, `runc spec`'s by default)
//! and prints the OCI `linux.seccomp` object a config.json takes.

mod args;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

pub use args::Args;

pub fn run(args: &Args) -> ExitCode {
    match print(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lxcfs-rs seccomp-profile: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.base)
        .with_context(|| format!("cannot read the base profile {}", args.base.display()))?;
    let base: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.base.display()))?;
    let socket = args.socket.display().to_string();
    let profile = with_notify(base, &socket)
        .with_context(|| format!("{} is not a seccomp profile", args.base.display()))?;
    let out = if args.oci {
        let caps: Vec<String> = if args.caps.is_empty() {
            args::RUNC_SPEC_CAPS.iter().map(|c| c.to_string()).collect()
        } else {
            args.caps.clone()
        };
        let target = Target {
            arch: native_arch().context("no seccomp architecture name for this machine")?,
            kernel: kernel_version(),
            caps,
        };
        to_oci(&profile, &target)?
    } else {
        profile
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `base` with sysinfo notified to `socket`.
pub fn with_notify(mut base: Value, socket: &str) -> Result<Value> {
    let Some(obj) = base.as_object_mut() else {
        bail!("not a JSON object");
    };
    if !obj.contains_key("defaultAction") {
        bail!("no defaultAction");
    }
    let Some(rules) = obj.get_mut("syscalls").and_then(Value::as_array_mut) else {
        bail!("no syscalls list");
    };
    for rule in rules.iter_mut() {
        if let Some(names) = rule.get_mut("names").and_then(Value::as_array_mut) {
            names.retain(|n| n.as_str() != Some("sysinfo"));
        }
    }
    rules.retain(|r| {
        r.get("names")
            .and_then(Value::as_array)
            .is_none_or(|n| !n.is_empty())
    });
    rules.push(json!({
        "names": ["sysinfo"],
        "action": "SCMP_ACT_NOTIFY",
        "comment": "lxcfs-rs seccomp-agent answers with the container's memory, swap, uptime, load and tasks"
    }));
    obj.insert("listenerPath".into(), Value::String(socket.into()));
    Ok(base)
}

/// What a runtime resolves a Docker/Podman profile for.
pub struct Target {
    /// `SCMP_ARCH_X86_64` style.
    pub arch: &'static str,
    /// (major, minor) of the running kernel.
    pub kernel: Option<(u32, u32)>,
    pub caps: Vec<String>,
}

/// The OCI `linux.seccomp` object for `target` (moby's and containers-common's rules:
/// a rule applies unless an `excludes` condition holds, and only if every `includes`
/// condition holds; capabilities in `includes` must all be held).
pub fn to_oci(profile: &Value, target: &Target) -> Result<Value> {
    let mut out = Map::new();
    let get = |k: &str| profile.get(k);
    out.insert(
        "defaultAction".into(),
        get("defaultAction").cloned().unwrap_or(Value::Null),
    );
    if let Some(e) = get("defaultErrnoRet") {
        out.insert("defaultErrnoRet".into(), e.clone());
    }
    out.insert(
        "architectures".into(),
        json!(architectures(profile, target.arch)),
    );
    if let Some(f) = get("flags") {
        out.insert("flags".into(), f.clone());
    }
    if let Some(p) = get("listenerPath") {
        out.insert("listenerPath".into(), p.clone());
    }
    let rules = get("syscalls")
        .and_then(Value::as_array)
        .context("no syscalls list")?;
    let mut syscalls = Vec::new();
    for r in rules.iter().filter(|r| applies(r, target)) {
        let mut s = Map::new();
        for k in ["names", "action", "errnoRet", "args"] {
            if let Some(v) = r.get(k).filter(|v| !v.is_null()) {
                s.insert(k.into(), v.clone());
            }
        }
        syscalls.push(Value::Object(s));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

/// The native architecture and its sub-architectures from `archMap` (or the profile's
/// flat `architectures`).
fn architectures(profile: &Value, native: &str) -> Vec<String> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(map) = profile.get("archMap").and_then(Value::as_array) {
        if let Some(e) = map
            .iter()
            .find(|e| e.get("architecture").and_then(Value::as_str) == Some(native))
        {
            let mut v = vec![native.to_string()];
            v.extend(strings(e.get("subArchitectures")));
            return v;
        }
        return vec![native.to_string()];
    }
    strings(profile.get("architectures"))
}

fn applies(rule: &Value, t: &Target) -> bool {
    let arches = |c| strs(c, "arches");
    let caps = |c| strs(c, "caps");
    let min_kernel = |c: Option<&Value>| -> Option<(u32, u32)> {
        c.and_then(|c| c.get("minKernel"))
            .and_then(Value::as_str)
            .and_then(procfile::kernel::release_version)
    };
    let short = t.arch.strip_prefix("SCMP_ARCH_").unwrap_or(t.arch);
    let arch_is = |a: &str| a.eq_ignore_ascii_case(short) || a == t.arch || moby_arch(a) == short;
    let holds = |c: &str| t.caps.iter().any(|h| h == c);
    let (inc, exc) = (rule.get("includes"), rule.get("excludes"));
    if arches(exc).into_iter().any(arch_is) || caps(exc).into_iter().any(holds) {
        return false;
    }
    if let (Some(min), Some(k)) = (min_kernel(exc), t.kernel) {
        if k >= min {
            return false;
        }
    }
    let inc_arches = arches(inc);
    if !inc_arches.is_empty() && !inc_arches.into_iter().any(arch_is) {
        return false;
    }
    if !caps(inc).into_iter().all(holds) {
        return false;
    }
    if let (Some(min), Some(k)) = (min_kernel(inc), t.kernel) {
        if k < min {
            return false;
        }
    }
    true
}

/// The strings of `condition[key]`.
fn strs<'a>(condition: Option<&'a Value>, key: &str) -> Vec<&'a str> {
    condition
        .and_then(|c| c.get(key))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The profiles name architectures as Go's GOARCH (`amd64`, `arm64`, `s390x`…).
fn moby_arch(goarch: &str) -> &str {
    match goarch {
        "amd64" => "X86_64",
        "386" => "X86",
        "arm64" => "AARCH64",
        "arm" => "ARM",
        "ppc64le" => "PPC64LE",
        "s390x" => "S390X",
        "riscv64" => "RISCV64",
        other => other,
    }
}

fn native_arch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => return None,
    })
}

fn kernel_version() -> Option<(u32, u32)> {
    let u = rustix::system::uname();
    procfile::kernel::release_version(u.release().to_str().ok()?)
}

#[cfg(test)]
mod tests;
