//! Legacy-era sessions: the cap on open sessions (503) with its smaller shares for sessions
//! opened without credentials (in all and per client address), and binding each session to the principal that opened (or first
//! used) it — another principal presenting its id gets 404, as if it did not exist.
//!
//! The first layer that needs the body: it reads it (within [`body_limit`]'s limits) to tell an
//! `initialize` from other requests, then hands rmcp the buffered bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use serde::Deserialize;

use super::authentication::AnonymousUnlessInitialize;
use super::client_ip::ClientIp;
use super::{SESSION_HEADER, body_limit, owner_key, refusal, with_retry_after};
use crate::http_server::sessions::{Access, Admission, InUse, Owner, Reservation, Sessions};
use crate::principal::Principal;

/// The session layer's state.
#[derive(Debug)]
pub struct SessionAdmission {
    pub sessions: Arc<Sessions>,
    /// With an auth strategy in place, a session opened without credentials is "anonymous" and
    /// held to the smaller cap, so such clients cannot fill the server; under `none` everyone is
    /// anonymous and the full cap applies.
    pub anonymous_share: bool,
}

/// What the gate knows about the request once its body is read.
struct Incoming {
    session_id: Option<String>,
    is_initialize: bool,
    is_delete: bool,
    /// `strategy:id` of the authenticated caller.
    owner: Option<String>,
    /// The caller's address, bucketed (see [`ClientIp::bucket_of`]) only for an anonymous
    /// `initialize`: most requests never need it.
    address: Option<ClientIp>,
}

impl Incoming {
    fn new(parts: &Parts, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Probe {
            method: Option<String>,
        }
        let session_id = parts
            .headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let method = serde_json::from_slice::<Probe>(body)
            .ok()
            .and_then(|p| p.method);
        Self {
            is_initialize: parts.method == Method::POST
                && session_id.is_none()
                && method.as_deref() == Some("initialize"),
            is_delete: parts.method == Method::DELETE,
            owner: parts.extensions.get::<Principal>().map(owner_key),
            address: parts.extensions.get::<ClientIp>().copied(),
            session_id,
        }
    }
}

/// What admission hands on to the response: the place of an admitted `initialize`, or the
/// in-use mark of the session the request belongs to.
#[derive(Default)]
struct Held {
    reservation: Option<Reservation>,
    in_use: Option<InUse>,
}

impl SessionAdmission {
    /// What the request holds while it runs, or `Err` with the 404 or 503 to send.
    async fn admit(&self, incoming: &Incoming) -> Result<Held, Response> {
        if let Some(id) = &incoming.session_id {
            return match self.sessions.access(id, incoming.owner.as_deref()) {
                Access::NotFound => {
                    Err(refusal(StatusCode::NOT_FOUND, -32001, "session not found"))
                }
                Access::Allowed(in_use) => Ok(Held {
                    in_use,
                    ..Held::default()
                }),
            };
        }
        if !incoming.is_initialize {
            return Ok(Held::default());
        }
        let bucket = (incoming.owner.is_none() && self.anonymous_share)
            .then(|| ClientIp::bucket_of(incoming.address));
        let anonymous = bucket.as_deref();
        let requester = incoming
            .owner
            .clone()
            .map_or(Owner::Unclaimed, Owner::Principal);
        match self.sessions.admit(&requester, anonymous).await {
            Admission::Admitted(reservation) => Ok(Held {
                reservation: Some(reservation),
                ..Held::default()
            }),
            Admission::Full => Err(with_retry_after(
                refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    -32000,
                    "maximum concurrent sessions reached (HTTP_MAX_CONCURRENT_SESSIONS) and every \
                     session is busy; retry later",
                ),
                Duration::from_secs(30),
            )),
        }
    }

    /// Records what rmcp's answer did to the session registry: a session closed by DELETE, or
    /// the session an admitted `initialize` opened (`opened`: the answer's session id). A
    /// reservation whose `initialize` opened nothing is dropped, which gives its place back.
    fn settle(
        &self,
        incoming: Incoming,
        reservation: Option<Reservation>,
        succeeded: bool,
        opened: Option<String>,
    ) {
        if let Some(id) = incoming
            .session_id
            .as_deref()
            .filter(|_| incoming.is_delete && succeeded)
        {
            self.sessions.forget(id);
        }
        if let (Some(reservation), Some(id)) = (reservation, opened) {
            let owner = incoming.owner.map_or(Owner::Unclaimed, Owner::Principal);
            self.sessions.record(reservation, &id, owner);
        }
    }
}

/// The layer.
pub async fn admit(
    State(state): State<Arc<SessionAdmission>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = if parts.method == Method::POST {
        match body_limit::collect(&parts, body).await {
            Ok(bytes) => bytes,
            Err(refused) => return refused,
        }
    } else {
        Bytes::new()
    };
    let incoming = Incoming::new(&parts, &bytes);
    if let Some(refused) = parts
        .extensions
        .get::<AnonymousUnlessInitialize>()
        .and_then(|deferred| deferred.refuse(incoming.is_initialize))
    {
        return refused;
    }
    let held = match state.admit(&incoming).await {
        Ok(held) => held,
        Err(refused) => return refused,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let response = json_not_found(response);
    let opened = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let succeeded = response.status().is_success();
    state.settle(incoming, held.reservation, succeeded, opened);
    match held.in_use {
        // The session stays busy until the answer (an SSE stream, maybe) has been sent.
        Some(in_use) => response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _busy = &in_use;
                frame
            }))
        }),
        None => response,
    }
}

/// rmcp answers an unknown or expired session with a plain-text 404; clients get the same
/// JSON-RPC error shape as for every other refusal.
fn json_not_found(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() == StatusCode::NOT_FOUND && !is_json {
        return refusal(
            StatusCode::NOT_FOUND,
            -32001,
            "session not found (expired or closed); initialize a new one",
        );
    }
    response
}
