//! The request deadline (`server.request_timeout`), with the blame put
//! where it belongs. A request whose body had not fully arrived when the
//! deadline passed was the client's to finish: `408 request_timeout`. One
//! the broker had in full was the broker's: something it waits on (the
//! database, a KMS, an IdP's JWKS, the peer coordinator) is slow or
//! unreachable, so `503 dependency_timeout` with `Retry-After`, which a
//! client may retry. Dropping the handler's future cancels its work; every
//! stored change commits in one transaction, so nothing is half-applied.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};

use crate::error::{Problem, RETRY_AFTER_SECONDS};

/// Runs the rest of the stack within `timeout`; see the module docs.
pub(super) async fn deadline(
    State(timeout): State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let received = Arc::new(AtomicBool::new(body.is_end_stream()));
    let body = Body::new(Watched {
        inner: body,
        received: received.clone(),
    });
    match tokio::time::timeout(timeout, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_) if received.load(Ordering::Acquire) => {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "request timed out waiting on a dependency"
            );
            let mut response = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency_timeout",
                "the broker could not finish in time: a service it depends on (database, KMS, \
                 identity provider or peer coordinator) is slow or unreachable; retry later",
            )
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            response
        }
        Err(_) => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
        .into_response(),
    }
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    received: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
