//! Extractors whose rejections speak problem+json.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Error;

/// `axum::Json`, but a bad body becomes a stable [`Error`]: 400 `bad_json`
/// with serde's explanation (which names the field), 413 or 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Error::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(Error::PayloadTooLarge)
            }
            Err(e) => Err(Error::BadRequest {
                code: "bad_json",
                detail: e.body_text(),
                field: None,
            }),
        }
    }
}

/// `axum::extract::Query`, but a bad query string becomes 400
/// `invalid_query` naming the parameter (unknown parameters too, for types
/// that deny them).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|e| Error::BadRequest {
                code: "invalid_query",
                detail: e.body_text(),
                field: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::ApiJson;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body1 {
        #[allow(dead_code)]
        name: String,
    }

    async fn handler(ApiJson(_): ApiJson<Body1>) -> impl IntoResponse {
        StatusCode::NO_CONTENT
    }

    async fn call(content_type: &str, body: &'static str) -> (StatusCode, serde_json::Value) {
        let app = Router::new().route("/", post(handler));
        let request = Request::post("/")
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn bad_json_is_a_400_problem_naming_the_field() {
        assert_eq!(
            call("application/json", r#"{"name":"x"}"#).await.0,
            StatusCode::NO_CONTENT
        );
        for (body, needle) in [
            ("{not json", "bad_json"),
            (r#"{"name": 7}"#, "name"),
            (r#"{"name":"x","extra":1}"#, "extra"),
            ("", "bad_json"),
        ] {
            let (status, problem) = call("application/json", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(problem["code"], "bad_json");
            assert!(problem.to_string().contains(needle), "{body}: {problem}");
        }
    }

    #[tokio::test]
    async fn a_non_json_content_type_is_a_415_problem() {
        let (status, problem) = call("text/plain", r#"{"name":"x"}"#).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(problem["code"], "unsupported_media_type");
    }
}
