//! Lease holder names shared by sync runs and webhook deliveries:
//! `host:pid:machine:random`, so a holder on this machine whose process is
//! gone (killed mid-work) can be taken over at once instead of waited out.

/// This process's lease name: `host:pid:machine:random`, where `machine`
/// names this boot and PID namespace (two containers can share a hostname).
pub fn new_id() -> String {
    format!(
        "{}:{}:{}:{:08x}",
        hostname(),
        std::process::id(),
        machine(),
        rand::random::<u32>()
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace(':', "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A short fingerprint of the boot and PID namespace (empty where unknown).
fn machine() -> String {
    use sha2::Digest;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if boot.is_empty() || ns.is_empty() {
        return String::new();
    }
    let d = sha2::Sha256::new()
        .chain_update(boot.trim())
        .chain_update(ns)
        .finalize();
    hex::encode(&d[..6])
}

/// Whether a lease holder is a process that no longer runs on this very
/// machine (killed mid-sync): then its lease need not be waited out.
/// Anything it cannot prove dead is alive.
pub fn is_dead(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid), Some(mach)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let ours = machine();
    if host != hostname() || ours.is_empty() || mach != ours {
        return false;
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => false,
        Ok(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}
