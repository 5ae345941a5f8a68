//! A tower layer that keeps every error response small, whatever the request held: the
//! `grpc-message` header is cut to [`MAX_MESSAGE_BYTES`] and a `grpc-status-details-bin` header
//! over [`MAX_DETAILS_BYTES`] is dropped.
//!
//! The services already clip what they echo (`faasconf_core::limits`) and list at most 20 field
//! violations; this is the backstop for any message that slips through (a 1 MB function name
//! echoed by a dependency's error, say). An error of a unary call is a trailers-only response,
//! so its status travels in these headers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

/// Bytes of a (percent-encoded) `grpc-message` a response may carry.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Bytes of a (base64) `grpc-status-details-bin` a response may carry.
pub const MAX_DETAILS_BYTES: usize = 64 * 1024;

/// Bounds the status headers of every response.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedErrorsLayer;

impl<S> Layer<S> for BoundedErrorsLayer {
    type Service = BoundedErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundedErrors { inner }
    }
}

/// The service [`BoundedErrorsLayer`] wraps.
#[derive(Debug, Clone)]
pub struct BoundedErrors<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for BoundedErrors<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            bound_headers(response.headers_mut());
            Ok(response)
        })
    }
}

/// Cuts `grpc-message` and drops an oversized `grpc-status-details-bin` in `headers`.
pub fn bound_headers(headers: &mut http::HeaderMap) {
    if let Some(message) = headers.get("grpc-message")
        && message.len() > MAX_MESSAGE_BYTES
    {
        let cut = clip_percent_encoded(message.as_bytes(), MAX_MESSAGE_BYTES);
        match http::HeaderValue::from_bytes(&cut) {
            Ok(value) => {
                headers.insert("grpc-message", value);
            }
            Err(_) => {
                headers.remove("grpc-message");
            }
        }
    }
    if headers
        .get("grpc-status-details-bin")
        .is_some_and(|d| d.len() > MAX_DETAILS_BYTES)
    {
        headers.remove("grpc-status-details-bin");
    }
}

/// The first `max` bytes of a percent-encoded message, not cut inside an escape or a UTF-8
/// sequence, followed by ` ... (clipped)`.
fn clip_percent_encoded(message: &[u8], max: usize) -> Vec<u8> {
    let mut end = max.min(message.len());
    // Not inside `%XX`.
    if let Some(p) = message[end.saturating_sub(2)..end]
        .iter()
        .position(|b| *b == b'%')
    {
        end = end.saturating_sub(2) + p;
    }
    // Not inside a multi-byte character: step back over escaped continuation bytes
    // (`%80`-`%BF`), then over the lead byte they follow (at most one character is lost).
    let escaped = |at: usize| -> Option<u8> {
        (message.get(at) == Some(&b'%'))
            .then(|| message.get(at + 1..at + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    while end >= 3 && escaped(end - 3).is_some_and(|b| (0x80..0xC0).contains(&b)) {
        end -= 3;
    }
    if end >= 3 && escaped(end - 3).is_some_and(|b| b >= 0xC0) {
        end -= 3;
    }
    let mut out = message[..end].to_vec();
    out.extend_from_slice(b" ... (clipped)");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn decoded(bytes: &[u8]) -> String {
        // grpc-message's encoding: percent escapes of bytes outside printable ASCII.
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16)
                        .unwrap(),
                );
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("still valid UTF-8 after the cut")
    }

    #[test]
    fn long_messages_are_cut_on_a_whole_character_and_big_details_dropped() {
        for unit in ["a", "é", "%", "€x"] {
            let status = tonic::Status::invalid_argument(unit.repeat(400_000));
            let mut headers = status.clone().into_http::<()>().headers().clone();
            headers.insert(
                "grpc-status-details-bin",
                http::HeaderValue::from_bytes(&vec![b'A'; MAX_DETAILS_BYTES + 1]).unwrap(),
            );
            bound_headers(&mut headers);
            let message = headers.get("grpc-message").unwrap().as_bytes();
            assert!(
                message.len() <= MAX_MESSAGE_BYTES + 20,
                "{unit}: {}",
                message.len()
            );
            assert!(decoded(message).ends_with(" ... (clipped)"), "{unit}");
            assert!(decoded(message).starts_with(unit));
            assert!(headers.get("grpc-status-details-bin").is_none());
        }
        let mut small = tonic::Status::not_found("no such workflow")
            .into_http::<()>()
            .headers()
            .clone();
        let before = small.clone();
        bound_headers(&mut small);
        assert_eq!(small, before);
    }
}
