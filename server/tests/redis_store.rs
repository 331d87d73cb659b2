//! Conversations shared through a real redis-server: two server processes (two
//! replicas) continue the same conversation; readiness follows Redis.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;

/// A throwaway redis-server on a free loopback port, killed on drop.
struct Redis {
    child: std::process::Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn redis() -> Redis {
    let port = free_port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed (`make deps` or apt-get install redis-server)");
    let url = format!("redis://127.0.0.1:{port}/");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Redis { child, url };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start");
}

#[tokio::test]
async fn two_replicas_continue_the_same_conversation_through_redis() {
    let fake = fake().await;
    let redis = redis().await;
    let mut env = env_for(&fake);
    env.insert("CONVERSATION_STORE".into(), "redis".into());
    env.insert("REDIS_URL".into(), redis.url.clone());
    let a = start_http(&env).await;
    let b = start_http(&env).await;

    let client_a = connect_legacy(&a.url).await;
    let first = call(
        &client_a,
        "chat",
        json!({"prompt": "Remember the word pelican", "model": "gpt-4o"}),
    )
    .await;
    let id = first.structured_content.unwrap()["continuation"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let client_b = connect_modern(&b.url).await;
    let second = call(
        &client_b,
        "chat",
        json!({"prompt": "Which word?", "model": "sonnet", "continuation_id": id}),
    )
    .await;
    let s = second.structured_content.unwrap();
    assert_eq!(s["continuation"]["id"], id.as_str(), "{s}");
    assert_eq!(s["continuation"]["messageCount"], 4);
    let body = fake.requests().last().unwrap().body.to_string();
    assert!(
        body.contains("pelican"),
        "replica B sent replica A's history: {body}"
    );

    for server in [&a, &b] {
        let ready = reqwest::get(format!("{}/readyz", server.base))
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
    drop(redis);
    let mut status = 0;
    for _ in 0..50 {
        status = reqwest::get(format!("{}/readyz", a.base))
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 503, "not ready while Redis is down");
}

#[tokio::test]
async fn an_unreachable_redis_stops_start_up_with_a_clear_error() {
    let port = free_port();
    let output = tokio::process::Command::new(BIN)
        .env_clear()
        .env("CONVERSATION_STORE", "redis")
        .env(
            "REDIS_URL",
            format!("redis://:hunter2-password@127.0.0.1:{port}/"),
        )
        .env("HTTP_PORT", "0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password is never printed: {stderr}"
    );
}
