//! `testenv build`: the Debian packages the node needs, and every pinned binary built from the
//! Go module proxy into a cache outside the source tree, keyed on the version table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cmd;
use crate::error::{Error, IoContext, Result};
use crate::layout::{Layout, PAUSE_IMAGE, is_root};
use crate::versions::{self, BINARIES, BuildGroup, GoBinary};

/// Debian packages for the node and for building images. buildah is installed without its
/// recommends (they pull in a second container stack).
pub const DEB_PACKAGES: &[&str] = &[
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "nftables",
    "iproute2",
    "buildah",
    "openssl",
    "musl-tools",
];

/// The binaries `up` needs, checked before starting anything.
pub fn missing_binaries(layout: &Layout, node: bool) -> Option<PathBuf> {
    let needed: &[&str] = if node {
        &[
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
            "kubectl",
            "crictl",
            "coredns",
        ]
    } else {
        &[
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kubectl",
        ]
    };
    let mut paths: Vec<PathBuf> = needed.iter().map(|n| layout.bin(n)).collect();
    if node {
        paths.push(layout.pause_archive());
    }
    paths.into_iter().find(|p| !p.exists())
}

/// Prints a step and how long it took.
fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> {what}");
    let start = Instant::now();
    let out = f()?;
    eprintln!("    {what}: {:.1} s", start.elapsed().as_secs_f64());
    Ok(out)
}

pub fn build(layout: &Layout, with_node: bool) -> Result<()> {
    let total = Instant::now();
    eprintln!(
        "testenv build: cache {} (versions hash {})",
        layout.build_dir().display(),
        versions::versions_hash()
    );
    eprintln!(
        "    a cold build (empty Go caches) compiles Kubernetes from source: expect 15-40 minutes on 2 cores; a cached one takes seconds"
    );
    if with_node {
        timed("Debian packages", install_packages)?;
    }
    let go = find_go()?;
    let bin = layout.bin_dir();
    std::fs::create_dir_all(&bin).ctx(|| format!("creating {}", bin.display()))?;
    for group in [BuildGroup::Kubernetes, BuildGroup::Kubelet, BuildGroup::Own] {
        let members: Vec<&GoBinary> = BINARIES.iter().filter(|b| b.group == group).collect();
        if group == BuildGroup::Own {
            for b in members {
                build_group(layout, &go, &[b])?;
            }
        } else {
            build_group(layout, &go, &members)?;
        }
    }
    if with_node {
        if layout.pause_archive().exists() {
            eprintln!("==> pause image: cached");
        } else {
            timed("pause image (static C program, buildah)", || {
                build_pause(layout)
            })?;
        }
    }
    if crate::gateway_api::crd_dir(layout)
        .join(".complete")
        .exists()
    {
        eprintln!("==> Gateway API CRDs: cached");
    } else {
        timed(
            &format!(
                "Gateway API CRDs ({} {})",
                crate::gateway_api::MODULE,
                crate::gateway_api::VERSION
            ),
            || crate::gateway_api::crd_files(layout).map(drop),
        )?;
    }
    for b in BINARIES {
        if let Ok(v) = report_version(layout, b.name) {
            eprintln!("    {:<24} {}", b.name, v);
        }
    }
    eprintln!(
        "testenv build done in {:.1} s; binaries in {}",
        total.elapsed().as_secs_f64(),
        bin.display()
    );
    Ok(())
}

fn install_packages() -> Result<()> {
    let missing: Vec<&str> = DEB_PACKAGES
        .iter()
        .copied()
        .filter(|p| !deb_installed(p))
        .collect();
    if missing.is_empty() {
        eprintln!("    all present: {}", DEB_PACKAGES.join(" "));
        return Ok(());
    }
    if !is_root() {
        return Err(Error::NotRoot {
            command: "build (to install Debian packages)",
        });
    }
    eprintln!("    installing {}", missing.join(" "));
    cmd::run_streaming(Command::new("apt-get").args(["update", "-q"]))?;
    cmd::run_streaming(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(())
}

fn deb_installed(pkg: &str) -> bool {
    cmd::run("dpkg-query", ["-W", "-f=${Status}", pkg])
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

pub fn find_go() -> Result<PathBuf> {
    if cmd::on_path("go") {
        return Ok(PathBuf::from("go"));
    }
    let local = PathBuf::from("/usr/local/go/bin/go");
    if cmd::is_executable(&local) {
        return Ok(local);
    }
    Err(Error::Invalid(
        "no Go toolchain: put `go` (1.26+) on PATH or install it at /usr/local/go".into(),
    ))
}

/// The environment every Go command runs in: caches under the cache dir (CI keeps them), two
/// parallel compiles at most (the machine has 2 cores and others build Rust at the same time),
/// static binaries, and no toolchain downloads.
pub fn go_command(layout: &Layout, go: &Path, dir: &Path) -> Command {
    let mut c = Command::new(go);
    c.current_dir(dir)
        .env("GOMODCACHE", layout.gomodcache())
        .env("GOCACHE", layout.gocache())
        .env("GOPATH", layout.cache_root.join("go/path"))
        .env("GOFLAGS", "-mod=mod -p=2")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    c
}

fn module_dir_name(group: BuildGroup, first: &GoBinary) -> String {
    match group {
        BuildGroup::Kubernetes => "kubernetes".into(),
        BuildGroup::Kubelet => "kubelet".into(),
        BuildGroup::Own => first.name.into(),
    }
}

fn build_group(layout: &Layout, go: &Path, members: &[&GoBinary]) -> Result<()> {
    let todo: Vec<&&GoBinary> = members
        .iter()
        .filter(|b| !layout.bin(b.name).exists())
        .collect();
    if todo.is_empty() {
        let names: Vec<&str> = members.iter().map(|b| b.name).collect();
        eprintln!("==> {}: cached", names.join(", "));
        return Ok(());
    }
    let Some(first) = members.first() else {
        return Ok(());
    };
    let dir = layout
        .go_src_dir()
        .join(module_dir_name(first.group, first));
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    timed(
        &format!("Go module {} {}", first.module, first.version),
        || {
            write_go_mod(layout, go, &dir, first)?;
            let mut get = go_command(layout, go, &dir);
            get.arg("get");
            for b in &todo {
                get.arg(format!("{}@{}", b.package, b.version));
            }
            cmd::run_cmd(&mut get).map(|_| ())
        },
    )?;
    for b in todo {
        timed(&format!("go build {} {}", b.name, b.version), || {
            let out = layout.bin(b.name);
            let tmp = out.with_extension("partial");
            let mut build = go_command(layout, go, &dir);
            build
                .args(["build", "-trimpath", "-ldflags", &b.ldflags(), "-o"])
                .arg(&tmp)
                .arg(b.package);
            cmd::run_cmd(&mut build)?;
            std::fs::rename(&tmp, &out).ctx(|| format!("installing {}", out.display()))
        })?;
    }
    Ok(())
}

/// go.mod for a build module. k8s.io/kubernetes lists its ~30 staging modules (k8s.io/api, …)
/// as v0.0.0 with `replace`s that only apply inside its own repository, so a module depending on
/// it must replace each with the matching v0.X.Y release: the block is generated from the
/// downloaded go.mod rather than typed.
fn write_go_mod(layout: &Layout, go: &Path, dir: &Path, b: &GoBinary) -> Result<()> {
    let mut text = format!(
        "module converse.local/testenv/{}\n\ngo 1.26\n",
        dir.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    if b.module == "k8s.io/kubernetes" {
        let mut dl = go_command(layout, go, dir);
        dl.args(["mod", "download", "-json"])
            .arg(format!("k8s.io/kubernetes@{}", b.version));
        // `go mod download` needs a go.mod in the working directory.
        std::fs::write(dir.join("go.mod"), &text).ctx(|| format!("writing {}", dir.display()))?;
        let json: serde_json::Value = serde_json::from_str(&cmd::run_cmd(&mut dl)?)?;
        let gomod_path = json["GoMod"].as_str().unwrap_or_default().to_string();
        let upstream =
            std::fs::read_to_string(&gomod_path).ctx(|| format!("reading {gomod_path}"))?;
        let staging = versions::staging_version(b.version);
        text.push_str(&format!("\nrequire k8s.io/kubernetes {}\n", b.version));
        text.push_str("\nreplace (\n");
        for m in staging_modules(&upstream) {
            text.push_str(&format!("\t{m} => {m} {staging}\n"));
        }
        text.push_str(")\n");
    }
    std::fs::write(dir.join("go.mod"), text).ctx(|| format!("writing {}", dir.display()))
}

/// Modules required at v0.0.0 in k8s.io/kubernetes' go.mod: its staging modules.
pub fn staging_modules(gomod: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_require = false;
    for line in gomod.lines() {
        let t = line.trim();
        if t.starts_with("require (") {
            in_require = true;
            continue;
        }
        if in_require && t == ")" {
            in_require = false;
            continue;
        }
        let words: Vec<&str> = t
            .trim_start_matches("require ")
            .split_whitespace()
            .collect();
        if (in_require || t.starts_with("require "))
            && words.len() >= 2
            && words[1] == "v0.0.0"
            && !out.iter().any(|m: &String| m == words[0])
        {
            out.push(words[0].to_string());
        }
    }
    out.sort();
    out
}

/// The sandbox ("pause") image: a static C program that blocks in pause() and exits on
/// SIGINT/SIGTERM, packaged `FROM scratch`.
const PAUSE_C: &str = r#"#include <signal.h>
#include <unistd.h>
static void bye(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGINT, bye);
    signal(SIGTERM, bye);
    for (;;) pause();
}
"#;

fn build_pause(layout: &Layout) -> Result<()> {
    let ctx = layout.go_src_dir().join("pause");
    std::fs::create_dir_all(&ctx).ctx(|| format!("creating {}", ctx.display()))?;
    std::fs::write(ctx.join("pause.c"), PAUSE_C).ctx(|| "writing pause.c".to_string())?;
    // musl-gcc gives a ~10 KB static binary; plain gcc -static works too (larger).
    let cc = if cmd::on_path("musl-gcc") {
        "musl-gcc"
    } else {
        "gcc"
    };
    cmd::run(
        cc,
        [
            "-static".as_ref(),
            "-Os".as_ref(),
            "-s".as_ref(),
            "-o".as_ref(),
            ctx.join("pause").as_os_str(),
            ctx.join("pause.c").as_os_str(),
        ],
    )?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n",
    )
    .ctx(|| "writing the pause Dockerfile".to_string())?;
    crate::images::build_image(layout, &ctx, PAUSE_IMAGE, &layout.pause_archive())
}

/// Builds the Go `main` package in `module_dir` (a module without dependencies, e.g. a test
/// fixture) into a static binary at `out`, with the same caches as `testenv build`.
pub fn go_build_static(layout: &Layout, module_dir: &Path, out: &Path) -> Result<()> {
    let go = find_go()?;
    let mut c = go_command(layout, &go, module_dir);
    c.args(["build", "-trimpath", "-ldflags", "-s -w", "-o"])
        .arg(out)
        .arg(".");
    cmd::run_cmd(&mut c).map(|_| ())
}

/// What a built binary says its version is.
pub fn report_version(layout: &Layout, name: &str) -> Result<String> {
    let bin = layout.bin(name);
    let args: &[&str] = match name {
        "kubectl" => &["version", "--client"],
        "helm" => &["version"],
        "coredns" => &["-version"],
        _ => &["--version"],
    };
    let out = cmd::run(&bin, args)?;
    Ok(out
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_modules_are_the_v0_0_0_requirements() {
        let gomod = "module k8s.io/kubernetes\n\nrequire (\n\tgithub.com/x/y v1.2.3\n\tk8s.io/api v0.0.0\n\tk8s.io/apimachinery v0.0.0\n)\n\nrequire (\n\tk8s.io/kms v0.0.0 // indirect\n)\n\nreplace k8s.io/api => ./staging/src/k8s.io/api\n";
        assert_eq!(
            staging_modules(gomod),
            vec!["k8s.io/api", "k8s.io/apimachinery", "k8s.io/kms"]
        );
    }
}
