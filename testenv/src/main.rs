//! The `testenv` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use testenv::{Layout, build, cluster, images};

#[derive(Parser)]
#[command(
    name = "testenv",
    about = "A real single-node Kubernetes cluster on this machine, for tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the pinned Kubernetes, etcd, helm, crictl and CoreDNS binaries (cached) and install
    /// the Debian packages the node needs.
    Build {
        /// Only the Go binaries: no Debian packages, no pause image (no root needed).
        #[arg(long)]
        control_plane_only: bool,
    },
    /// Start the cluster; the last line printed is `export KUBECONFIG=...`.
    Up {
        /// etcd, kube-apiserver and kube-controller-manager only: no root, no node.
        #[arg(long)]
        control_plane_only: bool,
    },
    /// Stop everything and undo every host change (idempotent).
    Down,
    /// What runs.
    Status,
    /// Print the path of the admin kubeconfig.
    Kubeconfig,
    /// Print the directory of the built binaries (kubectl, helm, ...), for scripts' PATH.
    BinDir,
    /// Import an OCI or docker archive into the node's containerd.
    LoadImage { archive: PathBuf },
    /// Build a Dockerfile directory with buildah (offline) and import the image into the node.
    BuildImage { dir: PathBuf, tag: String },
    /// Fail if anything of testenv is left on the host (processes, mounts, bridge, chains...).
    VerifyClean,
    /// Print the versions of the built binaries.
    Versions,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let layout = Layout::from_env();
    let result = run(cli.command, &layout).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testenv: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, layout: &Layout) -> testenv::Result<()> {
    match command {
        Command::Build { control_plane_only } => build::build(layout, !control_plane_only),
        Command::Up { control_plane_only } => {
            let kubeconfig = cluster::up(layout, cluster::UpOptions { control_plane_only }).await?;
            println!("export KUBECONFIG={}", kubeconfig.display());
            Ok(())
        }
        Command::Down => {
            let t = std::time::Instant::now();
            let report = cluster::down(layout);
            for line in &report.lines {
                eprintln!("    {line}");
            }
            eprintln!("testenv down: done in {:.1} s", t.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Status => {
            for line in cluster::status(layout)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Kubeconfig => {
            println!("{}", layout.kubeconfig().display());
            Ok(())
        }
        Command::BinDir => {
            println!("{}", layout.bin_dir().display());
            Ok(())
        }
        Command::LoadImage { archive } => {
            let out = images::load_image(layout, &archive)?;
            print!("{out}");
            Ok(())
        }
        Command::BuildImage { dir, tag } => {
            let archive = images::build_and_load(layout, &dir, &tag)?;
            println!(
                "built {tag} ({}) and imported it into the node",
                archive.display()
            );
            Ok(())
        }
        Command::VerifyClean => {
            let left = cluster::leftovers(layout);
            if left.is_empty() {
                println!(
                    "verify-clean: the host is clean (no process, mount, bridge, chain, cgroup or state dir of testenv)"
                );
                Ok(())
            } else {
                Err(testenv::Error::NotClean { leftovers: left })
            }
        }
        Command::Versions => {
            for b in testenv::versions::BINARIES {
                let v = build::report_version(layout, b.name)
                    .unwrap_or_else(|e| format!("not built ({e})"));
                println!("{:<24} pinned {:<10} reports {v}", b.name, b.version);
            }
            Ok(())
        }
    }
}
