//! The request body's limits: `HTTP_MAX_REQUEST_SIZE` (413) and `HTTP_REQUEST_TIMEOUT` for
//! receiving it (408).
//!
//! The layer reads nothing: it refuses a body whose declared length is over the cap at once and
//! caps the stream for whoever reads it later, so authentication (on the headers) comes before
//! any body byte is read. [`collect`] is the one way the gate reads a body.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::refusal;

/// The body cap of requests let in without credentials while an auth strategy is set (an
/// anonymous `initialize` is a few hundred bytes): a client without credentials cannot make the
/// server buffer `HTTP_MAX_REQUEST_SIZE` per request.
pub const ANONYMOUS_MAX: u64 = 64 * 1024;

/// The limits, also put into the request's extensions for [`collect`].
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    /// Bytes.
    pub max: u64,
    /// Time to receive the whole body.
    pub read_timeout: Duration,
}

impl BodyLimit {
    /// Lowers the cap of this request to [`ANONYMOUS_MAX`] (the authentication layer calls it
    /// for a request it lets in without credentials).
    pub fn restrict_to_anonymous(extensions: &mut axum::http::Extensions) {
        if let Some(limit) = extensions.get_mut::<BodyLimit>() {
            limit.max = limit.max.min(ANONYMOUS_MAX);
        }
    }

    fn too_large(&self) -> Response {
        refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32000,
            format!(
                "request body larger than {} bytes (HTTP_MAX_REQUEST_SIZE)",
                self.max
            ),
        )
    }
}

/// The layer: 413 for a declared length over the cap; the body capped for later readers.
pub async fn limit(State(limit): State<Arc<BodyLimit>>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.max) {
        return limit.too_large();
    }
    let (mut parts, body) = request.into_parts();
    let cap = usize::try_from(limit.max).unwrap_or(usize::MAX);
    parts.extensions.insert(*limit);
    next.run(Request::from_parts(
        parts,
        Body::new(Limited::new(body, cap)),
    ))
    .await
}

/// Reads the whole body within the limits the layer recorded (unlimited in time and size when
/// the layer did not run, as in unit tests of later layers).
pub async fn collect(parts: &Parts, body: Body) -> Result<Bytes, Response> {
    let limit = parts.extensions.get::<BodyLimit>().copied();
    // Capped again here: a later layer may have lowered the cap the stream was wrapped with.
    let cap = limit.map_or(usize::MAX, |l| usize::try_from(l.max).unwrap_or(usize::MAX));
    let read = Limited::new(body, cap).collect();
    let collected = match limit {
        Some(l) => match tokio::time::timeout(l.read_timeout, read).await {
            Ok(result) => result,
            Err(_) => {
                return Err(refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    -32000,
                    "request body not received in time (HTTP_REQUEST_TIMEOUT)",
                ));
            }
        },
        None => read.await,
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if is_over_limit(&*e) => Err(limit.map_or_else(
            || {
                refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    -32000,
                    "request body too large",
                )
            },
            |l| l.too_large(),
        )),
        Err(_) => Err(refusal(
            StatusCode::BAD_REQUEST,
            -32700,
            "could not read the request body",
        )),
    }
}

/// Whether a body error is the [`Limited`] cap (the stream was longer than declared, or had no
/// declared length).
fn is_over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use tower::ServiceExt;

    /// A route behind the layer that reads the body with [`collect`] and echoes its length.
    fn app(max: u64) -> Router {
        let limit = Arc::new(BodyLimit {
            max,
            read_timeout: Duration::from_secs(5),
        });
        Router::new()
            .route(
                "/",
                post(|request: Request| async move {
                    let (parts, body) = request.into_parts();
                    match collect(&parts, body).await {
                        Ok(bytes) => bytes.len().to_string().into_response(),
                        Err(refused) => refused,
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(limit, super::limit))
    }

    #[tokio::test]
    async fn declared_too_large_is_refused_without_reading() {
        let request = Request::post("/")
            .header(header::CONTENT_LENGTH, "11")
            // The body is shorter than declared: it is never read.
            .body(Body::from("x"))
            .unwrap();
        let response = app(10).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn an_undeclared_stream_over_the_cap_is_refused_when_read() {
        let chunks = futures::stream::iter(
            ["12345", "67890", "1"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        let request = Request::post("/").body(Body::from_stream(chunks)).unwrap();
        let response = app(10).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let request = Request::post("/").body(Body::from("0123456789")).unwrap();
        let response = app(10).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "exactly the cap is fine");
    }
}
