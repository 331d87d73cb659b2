//! Host networking: the pod bridge, the FORWARD guard that keeps pod traffic on this machine,
//! sysctls, and sweeping the iptables/nftables chains kube-proxy and CNI leave behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cmd;
use crate::error::{IoContext, Result};
use crate::layout::{BRIDGE, BRIDGE_IP};

/// Chains created by kube-proxy (KUBE-*), CNI plugins (CNI-*) and testenv's own guard.
pub fn is_our_chain(name: &str) -> bool {
    name.starts_with("KUBE-") || name.starts_with("CNI-") || name.starts_with("TESTENV-")
}

const GUARD_CHAIN: &str = "TESTENV-GUARD";

/// Sysctls that `up` (the kubelet, the CNI bridge plugin, kube-proxy) may change.
pub const WATCHED_SYSCTLS: &[&str] = &[
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/ipv4/conf/all/route_localnet",
    "net/netfilter/nf_conntrack_max",
];

fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key)
}

pub fn read_sysctls() -> BTreeMap<String, String> {
    WATCHED_SYSCTLS
        .iter()
        .filter_map(|k| {
            std::fs::read_to_string(sysctl_path(k))
                .ok()
                .map(|v| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key);
    std::fs::write(&path, value).ctx(|| format!("setting {}", path.display()))
}

/// Puts back the values recorded before `up`; returns the keys that had changed.
pub fn restore_sysctls(before: &BTreeMap<String, String>) -> Vec<String> {
    let now = read_sysctls();
    let mut restored = Vec::new();
    for (key, old) in before {
        if now.get(key) != Some(old) && write_sysctl(key, old).is_ok() {
            restored.push(format!("{key}={old}"));
        }
    }
    restored
}

pub fn bridge_exists() -> bool {
    std::path::Path::new("/sys/class/net").join(BRIDGE).exists()
}

/// Creates the pod bridge with the node's address *before* the API server starts, so the API
/// server can bind to it. IPv6 is disabled on it: pods get no IPv6 route off the node.
pub fn create_bridge() -> Result<()> {
    if !bridge_exists() {
        cmd::run("ip", ["link", "add", BRIDGE, "type", "bridge"])?;
    }
    let _ = write_sysctl(&format!("net/ipv6/conf/{BRIDGE}/disable_ipv6"), "1");
    let addrs = cmd::run("ip", ["-4", "addr", "show", "dev", BRIDGE])?;
    if !addrs.contains(&format!("{BRIDGE_IP}/")) {
        cmd::run(
            "ip",
            ["addr", "add", &format!("{BRIDGE_IP}/24"), "dev", BRIDGE],
        )?;
    }
    cmd::run("ip", ["link", "set", BRIDGE, "up"])?;
    Ok(())
}

pub fn delete_bridge() {
    if bridge_exists() {
        let _ = cmd::run("ip", ["link", "delete", BRIDGE]);
    }
}

/// Drops anything that enters from the pod bridge and would leave by another interface: pods
/// have no default route, and this makes sure that even with ip_forward=1 (the bridge plugin
/// sets it) nothing from a pod is forwarded off the machine. Traffic to the host itself
/// (the API server, CoreDNS) is INPUT, not FORWARD, and stays allowed.
///
/// It lives in the *mangle* table's FORWARD chain, which the kernel traverses before the filter
/// table's: kube-proxy inserts its own ACCEPT rules (KUBE-FORWARD) at the head of filter
/// FORWARD, ahead of anything we could put there.
pub fn add_forward_guard() -> Result<()> {
    for tool in ["iptables", "ip6tables"] {
        let chains = cmd::run(tool, ["-t", "mangle", "-S"])?;
        if !chains.contains(&format!("-N {GUARD_CHAIN}")) {
            cmd::run(tool, ["-t", "mangle", "-N", GUARD_CHAIN])?;
        }
        cmd::run(tool, ["-t", "mangle", "-F", GUARD_CHAIN])?;
        cmd::run(
            tool,
            [
                "-t",
                "mangle",
                "-A",
                GUARD_CHAIN,
                "-i",
                BRIDGE,
                "!",
                "-o",
                BRIDGE,
                "-m",
                "comment",
                "--comment",
                "converse-testenv: pod traffic stays on this machine",
                "-j",
                "DROP",
            ],
        )?;
        if tool == "ip6tables" {
            // Pods have no IPv6 addresses; drop any IPv6 from the bridge outright.
            cmd::run(
                tool,
                [
                    "-t",
                    "mangle",
                    "-A",
                    GUARD_CHAIN,
                    "-i",
                    BRIDGE,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        if cmd::run(tool, ["-t", "mangle", "-C", "FORWARD", "-j", GUARD_CHAIN]).is_err() {
            cmd::run(
                tool,
                ["-t", "mangle", "-I", "FORWARD", "1", "-j", GUARD_CHAIN],
            )?;
        }
    }
    Ok(())
}

/// Removes every KUBE-*, CNI-* and TESTENV-* chain from every table of `iptables` and
/// `ip6tables`, with the rules in built-in chains that jump to them (kube-proxy --cleanup misses
/// IPv6's KUBE-FIREWALL and its INPUT/OUTPUT jumps). Returns what it removed.
pub fn sweep_chains() -> Vec<String> {
    let mut removed = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        let Some(save) = cmd::run_quiet(format!("{tool}-save"), [] as [&str; 0]) else {
            continue;
        };
        for (table, script, what) in sweep_script(&save) {
            let mut child = match std::process::Command::new(format!("{tool}-restore"))
                .arg("--noflush")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
            {
                Ok(c) => c,
                Err(_) => continue,
            };
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                let _ = stdin.write_all(script.as_bytes());
            }
            if child.wait().map(|s| s.success()).unwrap_or(false) {
                removed.extend(what.into_iter().map(|w| format!("{tool} {table} {w}")));
            }
        }
    }
    // nftables: kube-proxy's nftables mode uses its own tables.
    if let Some(tables) = cmd::run_quiet("nft", ["list", "tables"]) {
        for line in tables.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["table", family, name] = parts.as_slice()
                && (*name == "kube-proxy" || name.starts_with("cni"))
                && cmd::run("nft", ["delete", "table", family, name]).is_ok()
            {
                removed.push(format!("nft table {family} {name}"));
            }
        }
    }
    removed
}

/// For each table of an `iptables-save` dump holding chains of ours: an `iptables-restore
/// --noflush` script deleting the jumps to them from other chains, then flushing and deleting
/// them. Rules are copied verbatim from the dump so quoting survives.
pub fn sweep_script(save: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut table = String::new();
    let mut ours: Vec<String> = Vec::new();
    let mut deletes: Vec<String> = Vec::new();
    let mut flush = |table: &str, ours: &mut Vec<String>, deletes: &mut Vec<String>| {
        if !ours.is_empty() || !deletes.is_empty() {
            let mut script = format!("*{table}\n");
            for d in deletes.iter() {
                script.push_str(&format!("-D {d}\n"));
            }
            for c in ours.iter() {
                script.push_str(&format!("-F {c}\n"));
            }
            for c in ours.iter() {
                script.push_str(&format!("-X {c}\n"));
            }
            script.push_str("COMMIT\n");
            out.push((table.to_string(), script, ours.clone()));
        }
        ours.clear();
        deletes.clear();
    };
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
        } else if let Some(decl) = line.strip_prefix(':') {
            if let Some(name) = decl.split_whitespace().next()
                && is_our_chain(name)
            {
                ours.push(name.to_string());
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let chain = rule.split_whitespace().next().unwrap_or("");
            if is_our_chain(chain) {
                continue; // goes away with the chain's flush
            }
            let words: Vec<&str> = rule.split_whitespace().collect();
            let jumps_to_ours = words
                .windows(2)
                .any(|w| (w[0] == "-j" || w[0] == "-g") && is_our_chain(w[1]));
            if jumps_to_ours {
                deletes.push(rule.to_string());
            }
        } else if line.trim() == "COMMIT" {
            flush(&table, &mut ours, &mut deletes);
        }
    }
    out
}

/// Chains of ours still present, for `verify-clean`.
pub fn leftover_chains() -> Vec<String> {
    let mut left = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        if let Some(save) = cmd::run_quiet(format!("{tool}-save"), [] as [&str; 0]) {
            let mut table = "";
            for line in save.lines() {
                if let Some(t) = line.strip_prefix('*') {
                    table = t;
                } else if let Some(decl) = line.strip_prefix(':')
                    && let Some(name) = decl.split_whitespace().next()
                    && is_our_chain(name)
                {
                    left.push(format!("{tool} {table} chain {name}"));
                }
            }
        }
    }
    if let Some(tables) = cmd::run_quiet("nft", ["list", "tables"]) {
        for line in tables.lines() {
            if line.contains("kube-proxy") {
                left.push(format!("nft {line}"));
            }
        }
    }
    left
}

/// Network namespaces the CNI plugins created for pod sandboxes.
pub fn cni_netns() -> Vec<PathBuf> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().starts_with("cni-"))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = "# Generated by iptables-save
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
:DOCKER-USER - [0:0]
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A FORWARD -j DOCKER-USER
-A KUBE-FIREWALL -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j DNAT --to 1.2.3.4
COMMIT
";

    #[test]
    fn sweep_deletes_jumps_then_chains_and_leaves_others() {
        let scripts = sweep_script(SAVE);
        assert_eq!(scripts.len(), 1, "only the filter table has chains of ours");
        let (table, script, chains) = &scripts[0];
        assert_eq!(table, "filter");
        assert_eq!(chains, &vec!["KUBE-FIREWALL", "KUBE-SERVICES"]);
        assert!(script.contains("-D INPUT -j KUBE-FIREWALL\n"));
        assert!(script.contains(
            "-D FORWARD -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
        ));
        assert!(!script.contains("DOCKER-USER"));
        let f = script.find("-F KUBE-FIREWALL").unwrap_or(0);
        let x = script.find("-X KUBE-FIREWALL").unwrap_or(0);
        let d = script.find("-D INPUT").unwrap_or(usize::MAX);
        assert!(
            d < f && f < x,
            "jumps deleted, then flushed, then removed:\n{script}"
        );
    }
}
