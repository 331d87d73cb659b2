//! Every authentication strategy through real MCP clients and raw HTTP: accepted
//! and refused credentials, and what a refusal looks like on the wire.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::routing::get;
use axum::{Json, Router};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const TEAM_A_KEY: &str = "team-a-key-0123456789abcdef0123456789";
/// Given as its digest: digest entries have no length rule.
const TEAM_B_KEY: &str = "team-b-key";
const TEAM_C_KEY: &str = "team-c-key-0123456789abcdef0123456789";
const SEKRET_KEY_1: &str = "sekret-api-key-1-0123456789abcdef0123456789";

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn hs_token(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn claims(iss: &str) -> Value {
    json!({"sub": "alice", "iss": iss, "exp": now() + 600, "nbf": now() - 10, "iat": now()})
}

/// A request that needs authentication under the default session-auth rules
/// (an anonymous `initialize` is allowed by MCP_SESSION_AUTH_REQUIRE_FOR_SESSION=false).
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;

async fn expect_401(url: &str, headers: &[(&str, &str)], why: &str) -> Value {
    let r = post(url, TOOLS_LIST, headers).await;
    assert_eq!(r.status(), 401, "{why}");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"mcp\""),
        "{why}: {challenge}"
    );
    let error = jsonrpc_error(r).await;
    assert_eq!(error["code"], -32001, "{why}");
    json!({"challenge": challenge, "error": error})
}

#[tokio::test]
async fn api_key_accepts_plain_and_hashed_keys_and_refuses_the_rest() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert("MCP_AUTH_STRATEGY".into(), "api_key".into());
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(TEAM_B_KEY.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    env.insert(
        "MCP_API_KEYS".into(),
        format!("{TEAM_A_KEY}, sha256:{digest}"),
    );
    let server = start_http(&env).await;

    let a = connect_with_headers(&server.url, &[("x-api-key", TEAM_A_KEY)])
        .await
        .unwrap();
    let result = call(&a, "chat", json!({"prompt": "hi", "model": "gpt-4o"})).await;
    assert_ne!(result.is_error, Some(true));
    let b = connect_with_headers(
        &server.url,
        &[("authorization", &format!("Bearer {TEAM_B_KEY}"))],
    )
    .await
    .unwrap();
    assert_eq!(b.list_all_tools().await.unwrap().len(), 2);

    expect_401(&server.url, &[], "no key").await;
    let wrong = expect_401(&server.url, &[("x-api-key", TEAM_C_KEY)], "wrong key").await;
    assert!(
        !wrong.to_string().contains(TEAM_C_KEY),
        "the key is never echoed"
    );
    let in_query = post(
        &format!("{}?api_key={TEAM_A_KEY}", server.url),
        TOOLS_LIST,
        &[],
    )
    .await;
    assert_eq!(
        in_query.status(),
        401,
        "keys in the URL are refused even when valid"
    );
    assert!(
        jsonrpc_error(in_query).await["message"]
            .as_str()
            .unwrap()
            .contains("URL")
    );

    let info = info(&server).await;
    assert_eq!(info["authentication"]["strategy"], "api_key");
    assert!(!info.to_string().contains(TEAM_A_KEY));
}

#[tokio::test]
async fn a_refused_request_never_creates_a_session() {
    let mut env = std::collections::BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "api_key".to_string());
    env.insert("MCP_API_KEYS".to_string(), "k".repeat(32));
    env.insert(
        "MCP_SESSION_AUTH_REQUIRE_FOR_SESSION".to_string(),
        "true".to_string(),
    );
    let server = start_http(&env).await;
    for _ in 0..5 {
        let r = post(&server.url, INITIALIZE, &[]).await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("mcp-session-id").is_none());
    }
    let info = info(&server).await;
    assert_eq!(info["sessions"]["active"], 0);
}

/// Authentication runs on the headers: a client that declares a 5 MB body and sends none of it
/// gets its 401 at once. (Reading the body first would wait for it until HTTP_REQUEST_TIMEOUT
/// and answer 408.) Only where an anonymous `initialize` is allowed (1.3.2's default
/// MCP_SESSION_AUTH_REQUIRE_FOR_SESSION=false) must a credential-less POST without a session be
/// read to know whether it is one.
#[tokio::test]
async fn credentials_are_checked_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut env = std::collections::BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "api_key".to_string());
    env.insert("MCP_API_KEYS".to_string(), "k".repeat(32));
    env.insert("HTTP_REQUEST_TIMEOUT".to_string(), "60s".to_string());
    env.insert(
        "MCP_SESSION_AUTH_REQUIRE_FOR_SESSION".to_string(),
        "true".to_string(),
    );
    let server = start_http(&env).await;
    let url = url::Url::parse(&server.url).unwrap();
    let authority = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    for (extra, what) in [
        ("", "initialize"),
        ("mcp-session-id: s-1\r\n", "in a session"),
        (
            "mcp-method: tools/call\r\nmcp-protocol-version: 2026-07-28\r\n",
            "stateless",
        ),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\n{extra}\
             content-length: 5000000\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), tcp.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer while the body is outstanding"))
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 401"), "{what}: {answer}");
    }
}

#[tokio::test]
async fn bearer_hs256_checks_signature_time_issuer_and_audience() {
    let mut env = std::collections::BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "bearer".to_string());
    env.insert("MCP_JWT_SECRET".to_string(), SECRET.to_string());
    env.insert("MCP_JWT_ISSUER".to_string(), "team-issuer".to_string());
    env.insert("MCP_JWT_AUDIENCE".to_string(), "converse".to_string());
    let server = start_http(&env).await;
    let good = {
        let mut c = claims("team-issuer");
        c["aud"] = json!("converse");
        c
    };
    let token = hs_token(good.clone());
    let client = connect_with_headers(
        &server.url,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 2);

    let variants: Vec<(&str, String)> = vec![
        ("alg none", {
            let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
            format!("{header}.{}.", base64_url(good.to_string().as_bytes()))
        }),
        (
            "wrong signature",
            encode(
                &Header::new(Algorithm::HS256),
                &good,
                &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
            )
            .unwrap(),
        ),
        (
            "expired",
            hs_token(
                json!({"sub":"a","iss":"team-issuer","aud":"converse","exp": now() - 120, "nbf": now() - 600}),
            ),
        ),
        (
            "not yet valid",
            hs_token(
                json!({"sub":"a","iss":"team-issuer","aud":"converse","exp": now() + 600, "nbf": now() + 300}),
            ),
        ),
        (
            "wrong issuer",
            hs_token(
                json!({"sub":"a","iss":"someone-else","aud":"converse","exp": now() + 600, "nbf": now()}),
            ),
        ),
        (
            "wrong audience",
            hs_token(
                json!({"sub":"a","iss":"team-issuer","aud":"another-api","exp": now() + 600, "nbf": now()}),
            ),
        ),
        (
            "no exp",
            hs_token(json!({"sub":"a","iss":"team-issuer","aud":"converse","nbf": now()})),
        ),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (why, token) in variants {
        let refused = expect_401(
            &server.url,
            &[("authorization", &format!("Bearer {token}"))],
            why,
        )
        .await;
        assert!(
            refused["challenge"]
                .as_str()
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{why}: {refused}"
        );
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn bearer_rs256_rejects_algorithm_confusion() {
    let (private, public) = rsa_keypair();
    let mut env = std::collections::BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "bearer".to_string());
    env.insert("MCP_JWT_ALGORITHM".to_string(), "RS256".to_string());
    env.insert("MCP_JWT_PUBLIC_KEY".to_string(), public.clone());
    let server = start_http(&env).await;
    let good = encode(
        &Header::new(Algorithm::RS256),
        &claims("converse-mcp-server"),
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let client = connect_with_headers(&server.url, &[("authorization", &format!("Bearer {good}"))])
        .await
        .unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 2);
    // The classic attack: HS256 "signed" with the public key as the HMAC secret.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("converse-mcp-server"),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    expect_401(
        &server.url,
        &[("authorization", &format!("Bearer {confused}"))],
        "HS/RS confusion",
    )
    .await;
}

/// A minimal identity provider on loopback: discovery + JWKS that can rotate.
struct Idp {
    url: String,
    jwks: Arc<std::sync::Mutex<Value>>,
    jwks_fetches: Arc<AtomicU64>,
}

async fn idp() -> Idp {
    let jwks = Arc::new(std::sync::Mutex::new(json!({"keys": []})));
    let fetches = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (j, f, u) = (jwks.clone(), fetches.clone(), url.clone());
    let app = Router::new()
        .route(
            "/realms/ai/.well-known/openid-configuration",
            get(move || {
                let u = u.clone();
                async move { Json(json!({"issuer": format!("{u}/realms/ai"), "jwks_uri": format!("{u}/realms/ai/certs")})) }
            }),
        )
        .route(
            "/realms/ai/certs",
            get(move || {
                let (j, f) = (j.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    Json(j.lock().unwrap().clone())
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Idp {
        url,
        jwks,
        jwks_fetches: fetches,
    }
}

fn jwk_for(private_pem: &str, kid: &str) -> Value {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap(),
    )
    .unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

fn rs_token(private_pem: &str, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn oidc_resource_server_validates_tokens_against_the_idp_jwks() {
    let idp = idp().await;
    let (key1, _) = rsa_keypair();
    let (key2, _) = rsa_keypair();
    *idp.jwks.lock().unwrap() = json!({"keys": [jwk_for(&key1, "k1")]});
    let issuer = format!("{}/realms/ai", idp.url);
    let mut env = std::collections::BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "oidc".to_string());
    env.insert("MCP_OIDC_ISSUER".to_string(), issuer.clone());
    env.insert(
        "MCP_PUBLIC_URL".to_string(),
        "https://mcp.example.com/mcp".to_string(),
    );
    env.insert(
        "MCP_OIDC_REQUIRED_SCOPES".to_string(),
        "mcp:tools".to_string(),
    );
    let server = start_http(&env).await;

    // Protected Resource Metadata at both well-known paths, without auth.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let prm: Value = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prm["resource"], "https://mcp.example.com/mcp", "{path}");
        assert_eq!(prm["authorization_servers"][0], issuer.as_str());
        assert_eq!(prm["scopes_supported"], json!(["mcp:tools"]));
    }

    let good_claims = |scope: &str| json!({"sub": "bob", "iss": issuer, "aud": "https://mcp.example.com/mcp", "scope": scope, "exp": now() + 600, "nbf": now() - 5});
    let token = rs_token(&key1, "k1", good_claims("openid mcp:tools"));
    let client = connect_with_headers(
        &server.url,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 2);

    // Keycloak and Auth0 access tokens carry no nbf: accepted.
    let no_nbf = rs_token(
        &key1,
        "k1",
        json!({"sub": "bob", "iss": issuer, "aud": "https://mcp.example.com/mcp", "scope": "mcp:tools", "exp": now() + 600}),
    );
    let client = connect_with_headers(
        &server.url,
        &[("authorization", &format!("Bearer {no_nbf}"))],
    )
    .await
    .unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 2);
    // In oidc mode even initialize needs a token (the MCP authorization spec).
    assert_eq!(post(&server.url, INITIALIZE, &[]).await.status(), 401);

    let missing = expect_401(&server.url, &[], "no token").await;
    let challenge = missing["challenge"].as_str().unwrap();
    assert!(
        challenge.contains(
            "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );

    let wrong_aud = rs_token(
        &key1,
        "k1",
        json!({"sub": "bob", "iss": issuer, "aud": "https://other.example.com", "scope": "mcp:tools", "exp": now() + 600, "nbf": now()}),
    );
    let refused = expect_401(
        &server.url,
        &[("authorization", &format!("Bearer {wrong_aud}"))],
        "wrong aud",
    )
    .await;
    assert!(
        refused["challenge"]
            .as_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    let wrong_iss = rs_token(
        &key1,
        "k1",
        json!({"sub": "bob", "iss": "https://evil.example.com", "aud": "https://mcp.example.com/mcp", "scope": "mcp:tools", "exp": now() + 600, "nbf": now()}),
    );
    expect_401(
        &server.url,
        &[("authorization", &format!("Bearer {wrong_iss}"))],
        "wrong iss",
    )
    .await;

    let no_scope = rs_token(&key1, "k1", good_claims("openid"));
    let r = post(
        &server.url,
        TOOLS_LIST,
        &[("authorization", &format!("Bearer {no_scope}"))],
    )
    .await;
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcp:tools\""),
        "{challenge}"
    );

    // Key rotation: a token signed with a new key is accepted after one refetch.
    let before = idp.jwks_fetches.load(Ordering::SeqCst);
    *idp.jwks.lock().unwrap() = json!({"keys": [jwk_for(&key1, "k1"), jwk_for(&key2, "k2")]});
    let rotated = rs_token(&key2, "k2", good_claims("mcp:tools"));
    let client = connect_with_headers(
        &server.url,
        &[("authorization", &format!("Bearer {rotated}"))],
    )
    .await
    .unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 2);
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), before + 1);

    // Unknown kids cannot make the server hammer the IdP: refreshes are rate-limited.
    let after_rotation = idp.jwks_fetches.load(Ordering::SeqCst);
    for i in 0..10 {
        let bogus = rs_token(&key2, &format!("bogus-{i}"), good_claims("mcp:tools"));
        expect_401(
            &server.url,
            &[("authorization", &format!("Bearer {bogus}"))],
            "unknown kid",
        )
        .await;
    }
    assert!(
        idp.jwks_fetches.load(Ordering::SeqCst) <= after_rotation + 1,
        "JWKS refetches are rate-limited"
    );

    // HS256 tokens are never accepted from an IdP.
    let hs = hs_token(good_claims("mcp:tools"));
    expect_401(
        &server.url,
        &[("authorization", &format!("Bearer {hs}"))],
        "HS256 in oidc mode",
    )
    .await;
}

/// The upstream identity provider of the oauth2 tests: token and user-info endpoints; the user
/// info names whoever the code is for (`carol` verified at example.com, `mallory` with an
/// unverified example.com address). The verifier it saw is kept for the PKCE check.
async fn identity_provider(seen_verifier: Arc<std::sync::Mutex<Option<String>>>) -> String {
    serve(
        Router::new()
            .route(
                "/token",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let sv = seen_verifier.clone();
                    async move {
                        assert_eq!(headers["accept"], "application/json");
                        assert!(headers["authorization"].to_str().unwrap().starts_with("Basic "));
                        let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                        assert_eq!(form["grant_type"], "authorization_code");
                        *sv.lock().unwrap() = form.get("code_verifier").cloned();
                        Json(json!({"access_token": format!("UPSTREAM-SECRET-{}", form["code"]), "token_type": "bearer"}))
                    }
                }),
            )
            .route(
                "/userinfo",
                get(|headers: axum::http::HeaderMap| async move {
                    match headers["authorization"].to_str().unwrap() {
                        "Bearer UPSTREAM-SECRET-carol" => Json(json!({
                            "sub": "carol-42", "email": "carol@example.com",
                            "email_verified": true, "name": "Carol"
                        })),
                        "Bearer UPSTREAM-SECRET-mallory" => Json(json!({
                            "sub": "mallory-7", "email": "ceo@example.com", "email_verified": false
                        })),
                        other => panic!("unexpected token {other}"),
                    }
                }),
            ),
    )
    .await
}

fn oauth2_env(
    fake: &converse_fake_llm::FakeLlm,
    upstream: &str,
    allowed: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut env = env_for(fake);
    env.insert("MCP_AUTH_STRATEGY".into(), "oauth2".into());
    env.insert("MCP_JWT_SECRET".into(), SECRET.into());
    env.insert("MCP_OAUTH_CLIENT_ID".into(), "converse-client".into());
    env.insert("MCP_OAUTH_CLIENT_SECRET".into(), "client-secret".into());
    env.insert("MCP_OAUTH_AUTH_URL".into(), format!("{upstream}/authorize"));
    env.insert("MCP_OAUTH_TOKEN_URL".into(), format!("{upstream}/token"));
    env.insert(
        "MCP_OAUTH_USERINFO_URL".into(),
        format!("{upstream}/userinfo"),
    );
    env.insert(
        "MCP_OAUTH_CALLBACK_URL".into(),
        "https://mcp.example.com/oauth/callback".into(),
    );
    env.insert("MCP_OAUTH_ALLOWED_USERS".into(), allowed.into());
    env
}

/// A browser's login: `/oauth/authorize` (its query and login cookie), then the callback.
struct Login {
    query: std::collections::HashMap<String, String>,
    cookie: String,
}

async fn start_login(browser: &reqwest::Client, base: &str) -> Login {
    let r = browser
        .get(format!("{base}/oauth/authorize"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/oauth/callback"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    Login {
        query: location.query_pairs().into_owned().collect(),
        cookie: set_cookie.split(';').next().unwrap().to_string(),
    }
}

async fn callback(
    browser: &reqwest::Client,
    base: &str,
    code: &str,
    state: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = browser.get(format!("{base}/oauth/callback?code={code}&state={state}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("theme=dark; {cookie}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn oauth2_login_flow_checks_state_once_and_never_leaks_the_upstream_token() {
    let seen_verifier = Arc::new(std::sync::Mutex::new(None::<String>));
    let upstream = identity_provider(seen_verifier.clone()).await;
    let fake = fake().await;
    let server = start_http(&oauth2_env(&fake, &upstream, "carol-42")).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let login = start_login(&browser, &server.base).await;
    let q = &login.query;
    assert_eq!(q["redirect_uri"], "https://mcp.example.com/oauth/callback");
    assert_eq!(q["code_challenge_method"], "S256");
    let state = q["state"].clone();

    let bad = callback(
        &browser,
        &server.base,
        "carol",
        "forged",
        Some(&login.cookie),
    )
    .await;
    assert_eq!(bad.status(), 400);

    let ok = callback(&browser, &server.base, "carol", &state, Some(&login.cookie)).await;
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let answer: Value = ok.json().await.unwrap();
    let token = answer["access_token"].as_str().unwrap().to_string();
    assert_eq!(answer["expires_in"], 86400);
    assert_eq!(answer["user"]["email"], "carol@example.com");
    // PKCE: the verifier sent upstream matches the challenge sent to the browser.
    let verifier = seen_verifier
        .lock()
        .unwrap()
        .clone()
        .expect("code_verifier sent");
    use sha2::Digest;
    assert_eq!(
        base64_url(&sha2::Sha256::digest(verifier.as_bytes())),
        q["code_challenge"]
    );
    // The upstream token never leaves the server.
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine;
    let minted: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        !minted.to_string().contains("UPSTREAM") && !answer.to_string().contains("UPSTREAM"),
        "{minted}"
    );
    assert_eq!(
        (
            minted["sub"].as_str(),
            minted["oauth2"].as_bool(),
            minted["email"].as_str()
        ),
        (Some("carol-42"), Some(true), Some("carol@example.com"))
    );

    let replay = callback(&browser, &server.base, "carol", &state, Some(&login.cookie)).await;
    assert_eq!(replay.status(), 400, "a state is accepted once");

    let client = connect_with_headers(
        &server.url,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    let result = call(&client, "chat", json!({"prompt": "hi", "model": "gpt-4o"})).await;
    assert_ne!(result.is_error, Some(true));

    // A bearer JWT with the right secret but without the login-flow claim is refused.
    let forged = hs_token(claims("converse-mcp-server"));
    expect_401(
        &server.url,
        &[("authorization", &format!("Bearer {forged}"))],
        "token not from the login flow",
    )
    .await;
}

/// Login CSRF: a callback with a valid state and code, from a browser that did not start that
/// login (an attacker's state sent to a victim), is refused and spends the state.
#[tokio::test]
async fn oauth2_state_is_bound_to_the_browser_that_started_the_login() {
    let upstream = identity_provider(Default::default()).await;
    let fake = fake().await;
    let server = start_http(&oauth2_env(&fake, &upstream, "carol-42")).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let attackers = start_login(&browser, &server.base).await;
    let victims = start_login(&browser, &server.base).await;
    let state = &attackers.query["state"];
    for cookie in [None, Some(victims.cookie.as_str())] {
        let r = callback(&browser, &server.base, "carol", state, cookie).await;
        assert_eq!(r.status(), 400, "{cookie:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_state");
        assert!(body.get("access_token").is_none());
    }
    let late = callback(
        &browser,
        &server.base,
        "carol",
        state,
        Some(&attackers.cookie),
    )
    .await;
    assert_eq!(late.status(), 400, "the refused state was spent");
}

/// Only the accounts MCP_OAUTH_ALLOWED_USERS names get a token; an unverified e-mail of an
/// allowed domain matches nothing; /oauth/authorize is limited per client address.
#[tokio::test]
async fn oauth2_only_allowed_users_get_a_token() {
    let upstream = identity_provider(Default::default()).await;
    let fake = fake().await;
    let server = start_http(&oauth2_env(&fake, &upstream, "@example.com")).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let carol = start_login(&browser, &server.base).await;
    let r = callback(
        &browser,
        &server.base,
        "carol",
        &carol.query["state"],
        Some(&carol.cookie),
    )
    .await;
    assert_eq!(r.status(), 200, "a verified example.com address");
    let mallory = start_login(&browser, &server.base).await;
    let r = callback(
        &browser,
        &server.base,
        "mallory",
        &mallory.query["state"],
        Some(&mallory.cookie),
    )
    .await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("MCP_OAUTH_ALLOWED_USERS")
    );

    // Two logins started above; the limit is 10 a minute per address.
    let mut limited = None;
    for _ in 0..10 {
        let r = browser
            .get(format!("{}/oauth/authorize", server.base))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("the 11th login from one address is refused");
    assert!(limited.headers().contains_key("retry-after"));
}

/// oauth2 without an allow-list does not start: anyone at GitHub could log in.
#[tokio::test]
async fn oauth2_without_an_allow_list_does_not_start() {
    let fake = fake().await;
    let mut env = oauth2_env(&fake, "https://idp.example.com", "");
    env.remove("MCP_OAUTH_ALLOWED_USERS");
    let output = tokio::process::Command::new(BIN)
        .env_clear()
        .envs(&env)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MCP_OAUTH_ALLOWED_USERS"), "{stderr}");
}

#[tokio::test]
async fn secrets_never_appear_in_logs_errors_or_info() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert("MCP_AUTH_STRATEGY".into(), "api_key".into());
    env.insert(
        "MCP_API_KEYS".into(),
        format!("{SEKRET_KEY_1},sekret-api-key-2-0123456789abcdef0123456789"),
    );
    env.insert(
        "MCP_JWT_SECRET".into(),
        "sekret-jwt-secret-that-is-long-enough!".into(),
    );
    env.insert("OPENAI_API_KEY".into(), "sk-sekret-openai".into());
    env.insert("OPENAI_BASE_URL".into(), format!("{}/v1", fake.base_url()));
    env.insert("LOG_LEVEL".into(), "trace".into());
    let server = start_http(&env).await;
    let client = connect_with_headers(&server.url, &[("x-api-key", SEKRET_KEY_1)])
        .await
        .unwrap();
    // The provider rejects the key: the tool error must not echo it.
    let result = call(&client, "chat", json!({"prompt": "hi", "model": "gpt-4o"})).await;
    assert_eq!(result.is_error, Some(true));
    let shown = format!("{result:?}");
    expect_401(
        &server.url,
        &[("x-api-key", "sekret-wrong-guess")],
        "wrong key",
    )
    .await;
    let info = reqwest::get(format!("{}/info", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = server.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("MCP_API_KEYS"),
        "the log says which secrets are set: {logs}"
    );
    for secret in [
        SEKRET_KEY_1,
        "sekret-api-key-2-0123456789abcdef0123456789",
        "sekret-jwt-secret",
        "sk-sekret-openai",
        "sekret-wrong-guess",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
        assert!(
            !shown.contains(secret),
            "{secret} leaked into a tool result"
        );
        assert!(!info.contains(secret), "{secret} leaked into /info");
    }
}

/// An identity provider that is down is asked again after an interval, not once per request:
/// discovery (2 well-known documents) and the JWKS each fail once for a burst of requests,
/// which all get 503.
#[tokio::test]
async fn a_failing_identity_provider_is_not_hammered() {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let failing = serve(Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }))
    .await;
    let (key, _) = rsa_keypair();
    let token = rs_token(&key, "k1", json!({"sub": "bob", "exp": now() + 600}));
    for (jwks_url, attempts) in [(None, 2), (Some(format!("{failing}/certs")), 1)] {
        let mut env = std::collections::BTreeMap::new();
        env.insert("MCP_AUTH_STRATEGY".to_string(), "oidc".to_string());
        env.insert(
            "MCP_OIDC_ISSUER".to_string(),
            format!("{failing}/realms/ai"),
        );
        env.insert(
            "MCP_PUBLIC_URL".to_string(),
            "https://mcp.example.com/mcp".to_string(),
        );
        if let Some(url) = &jwks_url {
            env.insert("MCP_OIDC_JWKS_URL".to_string(), url.clone());
        }
        let server = start_http(&env).await;
        hits.store(0, Ordering::SeqCst);
        for _ in 0..10 {
            let r = post(
                &server.url,
                INITIALIZE,
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
            assert_eq!(r.status(), 503, "{jwks_url:?}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), attempts, "{jwks_url:?}");
    }
}

/// A token minted as converse 1.3.2's docs show (`sub`, `name`, `email`; HS256, `expiresIn`,
/// `issuer`; no `nbf`) is accepted; one without `sub` is the client it names (`client_id`/`azp`),
/// and one naming nobody gets a 401 that says so.
#[tokio::test]
async fn bearer_tokens_minted_as_1_3_2_documented_are_accepted() {
    let mut env = std::collections::BTreeMap::new();
    env.insert("MCP_AUTH_STRATEGY".to_string(), "bearer".to_string());
    env.insert("MCP_JWT_SECRET".to_string(), SECRET.to_string());
    let server = start_http(&env).await;
    let iat = now();
    for claims in [
        json!({"sub": "user123", "name": "John Doe", "email": "john@example.com", "iat": iat, "exp": iat + 86400, "iss": "converse-mcp-server"}),
        json!({"client_id": "ci-pipeline", "iat": iat, "exp": iat + 600, "iss": "converse-mcp-server"}),
        json!({"azp": "ci-pipeline", "iat": iat, "exp": iat + 600, "iss": "converse-mcp-server"}),
    ] {
        let token = hs_token(claims.clone());
        let client = connect_with_headers(
            &server.url,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
        .unwrap_or_else(|e| panic!("{claims}: {e}"));
        assert_eq!(client.list_all_tools().await.unwrap().len(), 2);
    }
    let nobody = hs_token(json!({"iat": iat, "exp": iat + 600, "iss": "converse-mcp-server"}));
    let refused = expect_401(
        &server.url,
        &[("authorization", &format!("Bearer {nobody}"))],
        "no subject",
    )
    .await;
    assert!(refused.to_string().contains("no sub"), "{refused}");
}
