//! Extractors that behave like axum's but reject with [`ApiError`], so a malformed body,
//! query or path gets the same JSON error shape as everything else.

use crate::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON body, or a 400/413/415/422 JSON error.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let RawBody(bytes) =
            RawBody::from_request(Request::from_parts(parts.clone(), body), state).await?;
        // serde skips the fields a type does not name without looking at their bytes, so a
        // body that is not UTF-8 could otherwise be accepted.
        require_utf8(&bytes)?;
        let request = Request::from_parts(parts, Body::from(bytes));
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Json(value))
    }
}

/// A body as it came (within the size limit), or a 400/413 JSON error: for handlers that
/// read the bytes themselves, such as a signed webhook.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(rejection.body_text()),
                _ => ApiError::BadRequest(rejection.body_text()),
            })
    }
}

/// An optional JSON body as it came: empty when none was sent, else bytes sent as JSON
/// (415 otherwise), for handlers that read it themselves, like `/pay` with its card.
#[derive(Debug)]
pub struct OptionalJsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_media_type);
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        if !declared_json && !bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".to_string(),
            ));
        }
        Ok(OptionalJsonBody(bytes))
    }
}

/// `application/json` or `application/<anything>+json`, with any parameters.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A 400 unless `body` is UTF-8, as JSON must be.
pub fn require_utf8(body: &[u8]) -> Result<(), ApiError> {
    std::str::from_utf8(body)
        .map(|_| ())
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".to_string()))
}

/// Parses a JSON body read by hand the way [`Json`] does: malformed JSON is a 400, JSON of
/// the wrong shape (a missing, mistyped or unknown field, named) a 422.
pub fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    require_utf8(body)?;
    serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => ApiError::Validation(format!("{what}: {err}")),
        _ => ApiError::BadRequest(format!("{what}: {err}")),
    })
}

/// The name of the field serde refused as unknown, if that is why `err` failed: for bodies
/// parsed by hand whose other parse errors are not echoed (they could quote a card number),
/// so that a misspelled field is still named. Only a short, printable name is returned.
pub fn unknown_field(err: &serde_json::Error) -> Option<String> {
    // serde says so only in its message: "unknown field `promocode`, expected one of ...".
    let text = err.to_string();
    let name = text.strip_prefix("unknown field `")?.split('`').next()?;
    let plain = name.len() <= 64 && name.chars().all(|c| c.is_ascii_graphic());
    plain.then(|| name.to_string())
}

/// A 422 for a hand-parsed body: it names an unknown field, else says `expected`.
pub fn body_refusal(err: &serde_json::Error, expected: &str) -> ApiError {
    match unknown_field(err) {
        Some(name) => ApiError::Validation(format!("unknown field `{name}`; {expected}")),
        None => ApiError::Validation(expected.to_string()),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters, or a 400 JSON error naming the bad parameter (422 for one the route
/// does not know).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters, or a 400 JSON error.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(text),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Validation(text),
            _ => ApiError::BadRequest(text),
        }
    }
}

impl From<QueryRejection> for ApiError {
    /// A parameter the route does not know is a 422 naming it (a misspelled `limt` must not
    /// be dropped silently); a parameter of the wrong form stays a 400.
    fn from(rejection: QueryRejection) -> Self {
        let text = rejection.body_text();
        // serde reports an unknown field only through its message ("unknown field `x`,
        // expected ..."), so that is what is read here.
        if text.contains("unknown field") {
            ApiError::Validation(text)
        } else {
            ApiError::BadRequest(text)
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised_with_their_parameters() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json_media_type(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "",
        ] {
            assert!(!is_json_media_type(other), "{other}");
        }
    }
}
