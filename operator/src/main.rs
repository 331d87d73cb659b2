//! `converse-operator`: `crd` prints the CustomResourceDefinition; `run` (the controller) is
//! the next slice of work and refuses to pretend in the meantime.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "converse-operator",
    version,
    about = "Kubernetes operator for converse-server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ConverseServer CustomResourceDefinition as YAML (`| kubectl apply -f -`).
    Crd,
    /// Run the controller (not implemented yet).
    Run,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => match converse_operator::crd::crd_yaml() {
            Ok(yaml) => {
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(yaml.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("converse-operator: cannot render the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => {
            eprintln!(
                "converse-operator run: not implemented yet (the controller is the next slice); \
                 `converse-operator crd` prints the CRD"
            );
            ExitCode::from(2)
        }
    }
}
