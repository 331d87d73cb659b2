//! converse 1.3.2 deployments start unchanged: their `.env` file, `MCP_SERVER_NAME` /
//! `MCP_SERVER_VERSION`, the `/health` probe path.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// A fresh directory for one test.
fn temp_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("converse-compat-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `serverInfo` an `initialize` is answered with, as the official Rust SDK's client sees it.
async fn server_info(url: &str) -> Value {
    let client = connect_legacy(url).await;
    serde_json::to_value(&client.peer_info().expect("initialized").server_info).unwrap()
}

/// The `.env` of the working directory is read, as 1.3.2 did; the real environment wins.
#[tokio::test]
async fn a_1_3_2_env_file_is_read_and_the_environment_wins() {
    let fake = fake().await;
    let dir = temp_dir();
    let env_file = format!(
        "# a converse 1.3.2 .env\nOPENAI_API_KEY={key}\nOPENAI_BASE_URL={base}/v1\n\
         MCP_SERVER_NAME=from-the-file\nMCP_SERVER_VERSION=\"9.9.9\"\n",
        key = env_for(&fake)["OPENAI_API_KEY"],
        base = fake.base_url()
    );
    std::fs::write(dir.join(".env"), env_file).unwrap();
    let mut env = BTreeMap::new();
    env.insert(
        "MCP_SERVER_NAME".to_string(),
        "from-the-environment".to_string(),
    );
    let server = start_http_in(&env, Some(&dir)).await;
    let advertised = server_info(&server.url).await;
    assert_eq!(advertised["name"], "from-the-environment");
    assert_eq!(advertised["version"], "9.9.9");
    let providers = info(&server).await["providers"].to_string();
    assert!(providers.contains("openai"), "{providers}");
    // The probe path 1.3.2's health checks use.
    let health = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    std::fs::remove_dir_all(dir).ok();
}

/// A named env file that is missing, or a line that is not KEY=VALUE, stops the server (exit 2)
/// with the file and line, never the line's content.
#[tokio::test]
async fn env_file_errors_stop_the_server_and_name_the_line() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("team.env"),
        "OPENAI_API_KEY=sk-1\nnot a pair sk-secret\n",
    )
    .unwrap();
    for (file, expected) in [("missing.env", "missing.env"), ("team.env", "line 2")] {
        let output = tokio::process::Command::new(BIN)
            .env_clear()
            .env("CONVERSE_ENV_FILE", dir.join(file))
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{file}: {stderr}");
        assert!(!stderr.contains("sk-secret"), "{stderr}");
    }
    std::fs::remove_dir_all(dir).ok();
}
