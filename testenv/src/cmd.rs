//! Running host tools (ip, iptables, openssl, ctr, buildah, go, apt-get) and capturing their output.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Runs a command to completion, returning its stdout; a non-zero exit is an error carrying both
/// output streams. Output is captured in full and matched afterwards (never piped into `grep -q`,
/// which makes the writer fail at random under pipefail).
pub fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_cmd(&mut cmd)
}

/// Like [`run`] but ignores failure: for best-effort teardown steps whose failure means "already
/// gone".
pub fn run_quiet<I, S>(program: impl AsRef<OsStr>, args: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(program, args).ok()
}

pub fn run_cmd(cmd: &mut Command) -> Result<String> {
    let shown = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("cannot run `{shown}`"), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(Error::Command {
            command: shown,
            status: out.status.to_string(),
            output: tail_lines(&format!("{stdout}{stderr}"), 40),
        })
    }
}

/// Runs a command with its output streamed to our terminal (long builds show progress).
pub fn run_streaming(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Error::io(format!("cannot run `{shown}`"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: shown,
            status: status.to_string(),
            output: String::new(),
        })
    }
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Is an executable with this name on PATH?
pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(name))))
        .unwrap_or(false)
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_command_reports_its_output() {
        let err = run("sh", ["-c", "echo boom >&2; exit 3"]).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("boom") && text.contains("exit status: 3"),
            "{text}"
        );
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
    }
}
