//! Starting the cluster's long-running processes detached from the CLI, and stopping them.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, IoContext, Result};
use crate::state::ProcessRecord;

/// Starts `program` in its own process group (so a Ctrl-C at the terminal that ran `testenv up`
/// does not reach it) with stdout and stderr appended to `log`. The process outlives the CLI.
pub fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &[(&str, String)],
    log: &Path,
) -> Result<ProcessRecord> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .ctx(|| format!("opening {}", log.display()))?;
    let err = out
        .try_clone()
        .ctx(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .ctx(|| format!("starting {name} ({})", program.display()))?;
    let pid = child.id() as i32;
    // The Child handle is dropped without waiting: the process keeps running after we exit and
    // is reaped by init; while we live, `is_alive` treats a zombie as dead.
    drop(child);
    Ok(ProcessRecord {
        name: name.to_string(),
        pid,
        start_ticks: start_ticks(pid).unwrap_or(0),
        log: log.to_path_buf(),
    })
}

/// Field 22 of /proc/PID/stat, and the state letter (field 3).
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ticks = fields.get(19)?.parse().ok()?;
    Some((state, ticks))
}

pub fn start_ticks(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// Running (not a zombie) and still the process we started.
pub fn is_alive(rec: &ProcessRecord) -> bool {
    match stat(rec.pid) {
        Some((state, ticks)) => state != 'Z' && (rec.start_ticks == 0 || ticks == rec.start_ticks),
        None => false,
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL and wait again. Reaps our own children.
pub fn stop(rec: &ProcessRecord, grace: Duration) {
    if !is_alive(rec) {
        reap(rec.pid);
        return;
    }
    let pid = Pid::from_raw(rec.pid);
    let _ = kill(pid, Signal::SIGTERM);
    if wait_gone(rec, grace) {
        return;
    }
    let _ = kill(pid, Signal::SIGKILL);
    wait_gone(rec, Duration::from_secs(10));
}

fn wait_gone(rec: &ProcessRecord, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        reap(rec.pid);
        if !is_alive(rec) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Collects the exit status of a child of this process, if it is one (no-op otherwise).
fn reap(pid: i32) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// Kills a process by pid (used for leftovers found by [`find_processes`]).
pub fn kill_pid(pid: i32, grace: Duration) {
    if let Some(ticks) = start_ticks(pid) {
        let rec = ProcessRecord {
            name: String::new(),
            pid,
            start_ticks: ticks,
            log: PathBuf::new(),
        };
        stop(&rec, grace);
    }
}

/// Live processes whose executable or command line mentions one of `needles` (our state dir,
/// run dir, binaries): how leftovers are found when the state file is gone.
pub fn find_processes(needles: &[PathBuf]) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if raw.is_empty() || matches!(stat(pid), Some(('Z', _)) | None) {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let ours = needles.iter().any(|n| {
            let n = n.to_string_lossy();
            cmdline.contains(n.as_ref()) || exe.starts_with(n.as_ref())
        });
        // The CLI itself and test binaries may mention the state dir in their arguments.
        let is_testenv = exe
            .file_name()
            .map(|f| f.to_string_lossy().starts_with("testenv"))
            .unwrap_or(false);
        if ours && !is_testenv {
            found.push((pid, cmdline.trim().to_string()));
        }
    }
    found
}

/// Live processes whose executable's file name is one of `names`.
pub fn find_by_exe_name(names: &[&str]) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            continue;
        };
        let name = exe
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if names.contains(&name.as_str()) && !matches!(stat(pid), Some(('Z', _)) | None) {
            found.push((pid, name));
        }
    }
    found
}

/// Resident set size in MiB.
pub fn rss_mib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

pub fn tail_file(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        // Component logs have very long lines (serialized objects): keep the head of each.
        Ok(bytes) => crate::cmd::tail_lines(&String::from_utf8_lossy(&bytes), n)
            .lines()
            .map(|l| match l.char_indices().nth(300) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("(no log: {e})"),
    }
}

/// The error for a component that failed to start, with the end of its log.
pub fn start_error(rec: &ProcessRecord, reason: impl Into<String>) -> Error {
    Error::Start {
        component: rec.name.clone(),
        reason: reason.into(),
        log: rec.log.clone(),
        tail: tail_file(&rec.log, 25),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_process_is_tracked_and_stopped() {
        let dir = std::env::temp_dir().join(format!("testenv-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sleep.log");
        let rec = spawn(
            "sleep",
            Path::new("/bin/sleep"),
            &["30".to_string()],
            &dir,
            &[],
            &log,
        )
        .unwrap();
        assert!(is_alive(&rec));
        assert!(rec.start_ticks > 0);
        stop(&rec, Duration::from_secs(5));
        assert!(!is_alive(&rec));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reused_pid_is_not_ours() {
        let me = std::process::id() as i32;
        let rec = ProcessRecord {
            name: "x".into(),
            pid: me,
            start_ticks: start_ticks(me).unwrap() + 1,
            log: PathBuf::new(),
        };
        assert!(!is_alive(&rec));
    }
}
