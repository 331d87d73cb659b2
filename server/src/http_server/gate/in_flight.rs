//! A bound on requests to `/mcp` in flight at once (`HTTP_MAX_CONCURRENT_REQUESTS`), so that
//! memory stays bounded whatever the clients do: each admitted request may buffer a body of up
//! to `HTTP_MAX_REQUEST_SIZE`, and nothing else limits how many arrive together. Beyond the
//! bound a request gets 503 with `Retry-After` at once (a queue would only hold the memory
//! longer). A request counts until its response has been sent — an SSE stream or a long tool
//! call holds its place while it runs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use super::{refusal, with_retry_after};

#[derive(Debug)]
pub struct InFlight {
    permits: Arc<Semaphore>,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

/// The layer.
pub async fn limit(State(state): State<Arc<InFlight>>, request: Request, next: Next) -> Response {
    let Ok(permit) = state.permits.clone().try_acquire_owned() else {
        return with_retry_after(
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                -32000,
                "too many requests in flight (HTTP_MAX_CONCURRENT_REQUESTS); retry shortly",
            ),
            Duration::from_secs(1),
        );
    };
    next.run(request).await.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _held = &permit;
            frame
        }))
    })
}
