//! Limits and hardening on the wire: session cap, idle expiry, principal binding,
//! body size, rate limits, CORS, Host and Origin checks.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

const KEY_A: &str = "key-a-0123456789abcdef0123456789";
const KEY_B: &str = "key-b-0123456789abcdef0123456789";

fn api_key_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "api_key".to_string());
    env.insert("MCP_API_KEYS".to_string(), format!("{KEY_A},{KEY_B}"));
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

async fn open_session(url: &str, key: &str) -> reqwest::Response {
    post(url, INITIALIZE, &[("x-api-key", key)]).await
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Completes the handshake of the session `opened` answered with (key-a's) and opens its
/// server-to-client stream (GET), as a client waiting for notifications does; the session is
/// busy while the returned stream is held.
async fn busy_session(url: &str, opened: reqwest::Response) -> reqwest::Response {
    let id = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let headers = [("mcp-session-id", id.as_str()), ("x-api-key", KEY_A)];
    assert!(post(url, INITIALIZED, &headers).await.status().is_success());
    let stream = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &id)
        .header("x-api-key", KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200, "the stream opens");
    stream
}

async fn active_sessions(server: &Server) -> u64 {
    info(server).await["sessions"]["active"].as_u64().unwrap()
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;

#[tokio::test]
async fn session_cap_answers_503_with_retry_after_and_anonymous_sessions_have_a_smaller_cap() {
    let server = start_http(&api_key_env(&[("HTTP_MAX_CONCURRENT_SESSIONS", "4")])).await;
    // Anonymous initialize is allowed by default (MCP_SESSION_AUTH_REQUIRE_FOR_SESSION=false)
    // but may hold only a quarter of the cap.
    let anon = post(&server.url, INITIALIZE, &[]).await;
    assert_eq!(anon.status(), 200);
    let anon2 = post(&server.url, INITIALIZE, &[]).await;
    assert_eq!(anon2.status(), 200, "the idle anonymous session made room");
    assert_eq!(
        active_sessions(&server).await,
        1,
        "anonymous clients cannot fill the server: they only replace each other"
    );
    // Busy sessions (each with its stream open) cannot make room for new ones.
    let mut streams = Vec::new();
    for _ in 0..3 {
        let opened = open_session(&server.url, KEY_A).await;
        assert_eq!(opened.status(), 200);
        streams.push(busy_session(&server.url, opened).await);
    }
    let full = open_session(&server.url, KEY_B).await;
    assert_eq!(full.status(), 503);
    assert!(full.headers().get("retry-after").is_some());
    let error = jsonrpc_error(full).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("HTTP_MAX_CONCURRENT_SESSIONS")
    );
}

/// 2 × 32 authenticated clients (rmcp, the official Rust SDK) initialize at the same moment
/// against a cap of exactly 64 under 1.3.2's session-auth defaults: none is refused or counted
/// as anonymous, and `/info`, the metric and the cap agree on the count.
#[tokio::test]
async fn a_burst_of_authenticated_clients_up_to_the_cap_is_admitted() {
    let server = start_http(&api_key_env(&[("HTTP_MAX_CONCURRENT_SESSIONS", "64")])).await;
    let url = &server.url;
    let connects = (0..64).map(|i| async move {
        let key = if i % 2 == 0 { KEY_A } else { KEY_B };
        connect_with_headers(url, &[("x-api-key", key)]).await
    });
    let clients = futures::future::join_all(connects).await;
    let refused: Vec<&String> = clients.iter().filter_map(|c| c.as_ref().err()).collect();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        refused.first()
    );

    let info = info(&server).await;
    assert_eq!(info["sessions"]["active"], 64);
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "converse_sessions_active 64"),
        "{metrics}"
    );
    assert_eq!(open_session(&server.url, KEY_A).await.status(), 503);
}

/// Clients that vanish without `DELETE` do not hold the cap until HTTP_SESSION_TIMEOUT: at the
/// cap their idle sessions make room, least recently used first, and such a client gets 404
/// (then initializes again).
#[tokio::test]
async fn vanished_clients_make_room_for_new_ones() {
    let server = start_http(&api_key_env(&[("HTTP_MAX_CONCURRENT_SESSIONS", "8")])).await;
    let mut vanished = Vec::new();
    for _ in 0..8 {
        let opened = open_session(&server.url, KEY_A).await;
        assert_eq!(opened.status(), 200);
        vanished.push(
            opened.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    for i in 0..8 {
        let key = if i % 2 == 0 { KEY_A } else { KEY_B };
        let opened = open_session(&server.url, key).await;
        assert_eq!(opened.status(), 200, "new client {i} is admitted");
    }
    assert_eq!(active_sessions(&server).await, 8);
    let oldest = post(
        &server.url,
        LIST,
        &[("mcp-session-id", &vanished[0]), ("x-api-key", KEY_A)],
    )
    .await;
    assert_eq!(oldest.status(), 404, "its session was closed to make room");
    jsonrpc_error(oldest).await;
}

#[tokio::test]
async fn sessions_are_bound_to_their_principal_and_expire_when_idle() {
    let server = start_http(&api_key_env(&[
        ("HTTP_SESSION_TIMEOUT", "1s"),
        ("HTTP_SESSION_CLEANUP_INTERVAL", "1s"),
    ]))
    .await;
    let opened = open_session(&server.url, KEY_A).await;
    let id = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let ack = post(
        &server.url,
        initialized,
        &[("x-api-key", KEY_A), ("mcp-session-id", &id)],
    )
    .await;
    assert_eq!(ack.status(), 202);
    let own = post(
        &server.url,
        LIST,
        &[("x-api-key", KEY_A), ("mcp-session-id", &id)],
    )
    .await;
    assert_eq!(own.status(), 200);
    let stolen = post(
        &server.url,
        LIST,
        &[("x-api-key", KEY_B), ("mcp-session-id", &id)],
    )
    .await;
    assert_eq!(
        stolen.status(),
        404,
        "another principal cannot use the session"
    );
    jsonrpc_error(stolen).await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = post(
        &server.url,
        LIST,
        &[("x-api-key", KEY_A), ("mcp-session-id", &id)],
    )
    .await;
    assert_eq!(expired.status(), 404, "idle sessions expire");
    jsonrpc_error(expired).await;
    let info = info(&server).await;
    assert_eq!(info["sessions"]["active"], 0, "no leaked session");
}

#[tokio::test]
async fn oversized_bodies_get_413_with_a_jsonrpc_error() {
    let server = start_http(&api_key_env(&[("HTTP_MAX_REQUEST_SIZE", "2kb")])).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"chat","arguments":{{"prompt":"{}"}}}}}}"#,
        "x".repeat(5000)
    );
    let r = post(&server.url, &big, &[("x-api-key", KEY_A)]).await;
    assert_eq!(r.status(), 413);
    assert!(
        jsonrpc_error(r).await["message"]
            .as_str()
            .unwrap()
            .contains("HTTP_MAX_REQUEST_SIZE")
    );
}

/// Without credentials (here an anonymous `initialize`, allowed by 1.3.2's defaults), a body is
/// capped at 64 KiB however large HTTP_MAX_REQUEST_SIZE is; with credentials it is not.
#[tokio::test]
async fn anonymous_requests_get_a_small_body_cap() {
    let server = start_http(&api_key_env(&[])).await;
    let padded = |size: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"{}","version":"1"}}}}}}"#,
            "x".repeat(size)
        )
    };
    let anonymous = post(&server.url, &padded(100 * 1024), &[]).await;
    assert_eq!(anonymous.status(), 413);
    jsonrpc_error(anonymous).await;
    assert_eq!(post(&server.url, &padded(1024), &[]).await.status(), 200);
    let authenticated = post(&server.url, &padded(100 * 1024), &[("x-api-key", KEY_A)]).await;
    assert_eq!(authenticated.status(), 200);
}

#[tokio::test]
async fn rate_limits_count_per_principal_and_answer_429_with_retry_after() {
    let server = start_http(&api_key_env(&[
        ("HTTP_RATE_LIMIT_ENABLED", "true"),
        ("HTTP_RATE_LIMIT_MAX_REQUESTS", "3"),
        ("HTTP_RATE_LIMIT_WINDOW", "1h"),
    ]))
    .await;
    for _ in 0..3 {
        assert_ne!(
            post(&server.url, INITIALIZE, &[("x-api-key", KEY_A)])
                .await
                .status(),
            429
        );
    }
    let limited = post(&server.url, INITIALIZE, &[("x-api-key", KEY_A)]).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    jsonrpc_error(limited).await;
    // Another principal has its own budget.
    assert_eq!(
        post(&server.url, INITIALIZE, &[("x-api-key", KEY_B)])
            .await
            .status(),
        200
    );
    // Failed authentication spends the client IP's budget, so guessing keys is throttled too.
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            post(&server.url, LIST, &[("x-api-key", &format!("guess-{i}"))])
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn cors_preflights_are_answered_before_auth() {
    let server = start_http(&api_key_env(&[(
        "HTTP_CORS_ORIGINS",
        "https://app.example.com",
    )]))
    .await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &server.url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, mcp-session-id, mcp-protocol-version, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allow_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "mcp-session-id",
        "mcp-protocol-version",
        "x-api-key",
        "last-event-id",
    ] {
        assert!(
            allow_headers.contains(h),
            "{h} missing from {allow_headers}"
        );
    }
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let actual = post(
        &server.url,
        INITIALIZE,
        &[("x-api-key", KEY_A), ("origin", "https://app.example.com")],
    )
    .await;
    let exposed = actual.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("mcp-session-id") && exposed.contains("www-authenticate"),
        "{exposed}"
    );
}

/// A page on another site must not drive a server on the user's machine: with the defaults
/// (no auth), a browser-like preflight gets no CORS grant and the POST that follows gets 403,
/// while clients that send no `Origin` (CLIs, SDKs) and the server's own origin work. Probes
/// and `/info` carry no CORS headers.
#[tokio::test]
async fn web_pages_of_other_origins_cannot_call_a_default_server() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, &server.url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS grant for another origin"
    );
    let evil = post(
        &server.url,
        INITIALIZE,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(evil.status(), 403);
    assert!(
        jsonrpc_error(evil).await["message"]
            .as_str()
            .unwrap()
            .contains("HTTP_CORS_ORIGINS")
    );
    assert_eq!(post(&server.url, INITIALIZE, &[]).await.status(), 200);
    let own = server.base.clone();
    assert_eq!(
        post(&server.url, INITIALIZE, &[("origin", &own)])
            .await
            .status(),
        200,
        "the server's own origin"
    );
    for path in ["/info", "/healthz", "/readyz", "/metrics"] {
        let response = client
            .get(format!("{}{path}", server.base))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .keys()
                .all(|h| !h.as_str().starts_with("access-control-")),
            "{path}"
        );
    }
}

/// `HTTP_CORS_ORIGINS=*` with no auth strategy is refused at startup.
#[tokio::test]
async fn any_origin_without_authentication_does_not_start() {
    let output = tokio::process::Command::new(BIN)
        .env_clear()
        .env("HTTP_CORS_ORIGINS", "*")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HTTP_CORS_ORIGINS") && stderr.contains("MCP_AUTH_STRATEGY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_host_and_origin_are_refused_with_403() {
    let server = start_http(&api_key_env(&[(
        "HTTP_ALLOWED_ORIGINS",
        "https://app.example.com",
    )]))
    .await;
    let host = post(
        &server.url,
        INITIALIZE,
        &[("x-api-key", KEY_A), ("host", "evil.example.com")],
    )
    .await;
    assert_eq!(host.status(), 403);
    jsonrpc_error(host).await;
    let origin = post(
        &server.url,
        INITIALIZE,
        &[("x-api-key", KEY_A), ("origin", "https://evil.example.com")],
    )
    .await;
    assert_eq!(origin.status(), 403);
    let good = post(
        &server.url,
        INITIALIZE,
        &[("x-api-key", KEY_A), ("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(good.status(), 200);
}

#[tokio::test]
async fn many_principals_under_rate_limits_leave_nothing_behind() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.extend(api_key_env(&[
        ("HTTP_RATE_LIMIT_ENABLED", "true"),
        ("HTTP_RATE_LIMIT_MAX_REQUESTS", "40"),
        ("HTTP_RATE_LIMIT_WINDOW", "1m"),
        ("HTTP_MAX_CONCURRENT_SESSIONS", "50"),
    ]));
    let key = |i: usize| format!("key-{i}-0123456789abcdef0123456789");
    env.insert(
        "MCP_API_KEYS".into(),
        (1..=4).map(key).collect::<Vec<_>>().join(","),
    );
    let server = start_http(&env).await;
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let key = key(worker % 4 + 1);
            let mut counts = [0u32; 4];
            for _ in 0..10 {
                let r = post(&url, INITIALIZE, &[("x-api-key", &key)]).await;
                match r.status().as_u16() {
                    200 => {
                        counts[0] += 1;
                        let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
                        let d = reqwest::Client::new()
                            .delete(&url)
                            .header("x-api-key", &key)
                            .header("mcp-session-id", id)
                            .send()
                            .await
                            .unwrap();
                        match d.status().as_u16() {
                            429 => counts[3] += 1,
                            status => assert!((200..300).contains(&status), "{status}"),
                        }
                    }
                    429 => counts[1] += 1,
                    other => {
                        assert_eq!(other, 503);
                        counts[2] += 1;
                    }
                }
            }
            counts
        }));
    }
    let mut total = [0u32; 4];
    for t in tasks {
        let c = t.await.expect("no panic in the load task");
        for i in 0..4 {
            total[i] += c[i];
        }
    }
    assert!(
        total[0] > 0 && total[1] > 0,
        "some requests pass, some are limited: {total:?}"
    );
    // Sessions deleted by their clients are gone and limited initializes never
    // created one: exactly the sessions whose DELETE was rate-limited remain.
    let info = info(&server).await;
    assert_eq!(
        info["sessions"]["active"].as_u64().unwrap(),
        u64::from(total[3]),
        "{info} {total:?}"
    );
    let healthy = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200, "the server survived");
}

/// 200 credential-less `initialize`s at once (1.3.2's default lets them in) take at most the
/// anonymous places one address may hold; an authenticated client opens its session right after.
#[tokio::test]
async fn an_anonymous_flood_does_not_lock_out_authenticated_clients() {
    let server = start_http(&api_key_env(&[])).await;
    let url = &server.url;
    let flood = (0..200).map(|_| async move { post(url, INITIALIZE, &[]).await.status().as_u16() });
    let statuses = futures::future::join_all(flood).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    // 100 sessions: 25 anonymous places, 6 per address.
    let active = active_sessions(&server).await;
    assert!(
        (1..=6).contains(&active),
        "{active} anonymous sessions from one address"
    );
    let opened = open_session(url, KEY_A).await;
    assert_eq!(opened.status(), 200, "the authenticated client is admitted");
}

/// Requests in flight are bounded (HTTP_MAX_CONCURRENT_REQUESTS): two authenticated POSTs
/// whose bodies never come hold both places, the third request gets 503 with `Retry-After` and
/// a JSON-RPC error at once; when they go, requests are served again.
#[tokio::test]
async fn requests_in_flight_are_bounded() {
    use tokio::io::AsyncWriteExt;

    let server = start_http(&api_key_env(&[("HTTP_MAX_CONCURRENT_REQUESTS", "2")])).await;
    let url = url::Url::parse(&server.url).unwrap();
    let authority = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nx-api-key: {KEY_A}\r\n\
             content-length: 100000\r\n\r\n{{"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        stalled.push(tcp);
    }
    // The two stalled requests reach the layer in their own time.
    let refused = loop {
        let r = open_session(&server.url, KEY_B).await;
        if r.status() == 503 {
            break r;
        }
        drop(r);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let error = jsonrpc_error(refused).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("HTTP_MAX_CONCURRENT_REQUESTS"),
        "{error}"
    );
    drop(stalled);
    let served = loop {
        let r = open_session(&server.url, KEY_B).await;
        if r.status() != 503 {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(served.status(), 200);
}
