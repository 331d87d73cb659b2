//! The real server binary as a local stdio server, spawned the way Claude Code
//! and Claude Desktop spawn it.

mod common;

use common::*;
use rmcp::ServiceExt;
use rmcp::model::ClientConfig;
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use tokio::process::Command;

#[tokio::test]
async fn stdio_serves_tools_and_reads_local_files() {
    let fake = fake().await;
    let dir = std::env::temp_dir().join(format!("converse-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("code.rs");
    std::fs::write(&file, "fn answer() -> u32 { 42 }").unwrap();

    let mut cmd = Command::new(BIN);
    cmd.arg("--transport")
        .arg("stdio")
        .env_clear()
        .envs(env_for(&fake));
    let client = ClientConfig::default()
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .expect("stdio client connects");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 2);
    // Without CONVERSE_FILES_ROOT, stdio mode may read the user's own files.
    let result = call(
        &client,
        "chat",
        json!({"prompt": "explain", "model": "sonnet", "files": [file.display().to_string()]}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(
        fake.requests()
            .last()
            .unwrap()
            .body
            .to_string()
            .contains("42 }")
    );
    client.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// `LOG_LEVEL=silent` (converse 1.3.2's setting) is accepted and the server writes nothing to
/// stderr while it serves.
#[tokio::test]
async fn silent_log_level_writes_nothing() {
    let fake = fake().await;
    let mut cmd = Command::new(BIN);
    cmd.arg("--transport")
        .arg("stdio")
        .env_clear()
        .envs(env_for(&fake))
        .env("LOG_LEVEL", "silent");
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = ClientConfig::default()
        .serve(transport)
        .await
        .expect("stdio client connects");
    let result = call(&client, "chat", json!({"prompt": "hi", "model": "gpt-5"})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    client.cancel().await.unwrap();
    let mut logged = String::new();
    if let Some(mut stderr) = stderr {
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stderr.read_to_string(&mut logged),
        )
        .await;
    }
    assert!(logged.is_empty(), "{logged}");
}
