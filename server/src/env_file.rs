//! The `.env` file converse 1.3.2 read at start-up (the `dotenv` package): `KEY=VALUE` lines from
//! `.env` in the working directory, or from the file `CONVERSE_ENV_FILE` names. Its pairs are
//! handed to the configuration as fallbacks: a variable of the real environment wins.
//!
//! A missing `.env` is normal (most deployments have none; the container images have none unless
//! one is mounted); a missing file that `CONVERSE_ENV_FILE` names is an error. An unparsable line
//! is reported by its number only: the line may hold a secret.

use std::path::{Path, PathBuf};

use converse_config::vars::CONVERSE_ENV_FILE;

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("{CONVERSE_ENV_FILE}: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}: not a KEY=VALUE line (value not shown: it may be secret)", path.display())]
    Line { path: PathBuf, line: usize },
}

/// The pairs of the env file, if there is one.
pub fn read() -> Result<Vec<(String, String)>, EnvFileError> {
    let named = std::env::var_os(CONVERSE_ENV_FILE).filter(|v| !v.is_empty());
    let path = named
        .as_ref()
        .map_or_else(|| PathBuf::from(".env"), PathBuf::from);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text),
        Err(e) if named.is_none() && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(EnvFileError::Read { path, source }),
    }
}

/// Parses the file's text (dotenv syntax: comments, quotes, `export`, multi-line quoted values).
fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| {
            item.map_err(|e| EnvFileError::Line {
                path: path.to_path_buf(),
                line: match e {
                    dotenvy::Error::LineParse(bad, _) => line_of(text, &bad),
                    _ => 0,
                },
            })
        })
        .collect()
}

/// The 1-based number of the line where `bad` (what the parser could not read) starts.
fn line_of(text: &str, bad: &str) -> usize {
    let first = bad.lines().next().unwrap_or(bad);
    text.lines()
        .position(|l| l.contains(first) && !first.is_empty())
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
        parse(Path::new(".env"), text)
    }

    #[test]
    fn reads_what_1_3_2_env_files_contain() {
        let text = "# converse\nOPENAI_API_KEY=sk-123\nexport LOG_LEVEL=debug\n\nMCP_TRANSPORT=\"http\"\nXAI_API_KEY='x y'\n";
        assert_eq!(
            pairs(text).unwrap(),
            [
                ("OPENAI_API_KEY".into(), "sk-123".into()),
                ("LOG_LEVEL".into(), "debug".into()),
                ("MCP_TRANSPORT".into(), "http".into()),
                ("XAI_API_KEY".into(), "x y".into()),
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named_by_number_without_its_content() {
        let text = "A=1\nB=2\nTHIS IS NOT secret-value\nC=3\n";
        let e = pairs(text).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("secret-value"), "{e}");
    }
}
