//! The one error type of the shop's HTTP APIs and the single place it becomes a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every way a request can fail, named by outcome.
///
/// Each variant maps to one status code and a stable `code` string in the JSON body
/// `{"error":{"code":"not_found","message":"..."}}`. `Internal` keeps its detail for the log
/// and answers with a bare message, so no internal text reaches a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be parsed (wrong types, malformed JSON).
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing, empty or wrong API key (or, later, a bad signature).
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the key is valid but its scope does not cover this route (a storefront key on
    /// an admin route).
    #[error("{0}")]
    Forbidden(String),
    /// 402: the payment was declined; `code` says why (`card_declined`, `insufficient_funds`, ...).
    #[error("{message}")]
    Declined {
        /// The decline code.
        code: &'static str,
        /// What happened, in words.
        message: String,
    },
    /// 404: the resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the resource's current state.
    #[error("{0}")]
    Conflict(String),
    /// A refusal a service-to-service contract names (`out_of_stock`, `not_pending`, ...):
    /// its status (4xx) and code come from the contract's table, which the caller decodes
    /// with the same table.
    #[error("{message}")]
    Refused {
        /// The status, from the contract.
        status: u16,
        /// The code, from the contract.
        code: &'static str,
        /// What happened, in words.
        message: String,
    },
    /// 409 `request_in_flight`: the first request with this Idempotency-Key is still
    /// running; its outcome is not known yet (unlike a [`ApiError::Conflict`], not a no).
    #[error("{0}")]
    InFlight(String),
    /// 412: the request's `If-Match` names a version of the resource that is no longer the
    /// current one (someone changed it since it was read).
    #[error("{0}")]
    PreconditionFailed(String),
    /// 428: a change that would overwrite what others may have changed needs `If-Match`.
    #[error("{0}")]
    PreconditionRequired(String),
    /// 413: the body is larger than the service accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: this API key sent more requests than its rate allows; retry after this many
    /// seconds.
    #[error("too many requests from this client or key; retry after {0} s")]
    RateLimited(u64),
    /// 422: the request parsed but breaks a business rule.
    #[error("{0}")]
    Validation(String),
    /// 503: the database file cannot be written (disk full, read-only).
    #[error("{0}")]
    Storage(String),
    /// 503: a dependency this request cannot do without (the database, a peer) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the detail is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error object.
    pub error: ErrorDetail,
}

/// The `error` object: a stable machine-readable code and a sentence for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `not_found`.
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// Shorthand for an internal error built from any displayable cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// The HTTP status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Declined { code, .. } => (StatusCode::PAYMENT_REQUIRED, *code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Refused { status, code, .. } => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::CONFLICT),
                *code,
            ),
            ApiError::InFlight(_) => (StatusCode::CONFLICT, IN_FLIGHT_CODE),
            ApiError::PreconditionFailed(_) => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed")
            }
            ApiError::PreconditionRequired(_) => {
                (StatusCode::PRECONDITION_REQUIRED, "precondition_required")
            }
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The cause of a 5xx, carried on the response (never in its body) for the middleware
/// that logs it once, inside the request's span.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// A business refusal (402, 409, 422) carried on the response, for the middleware that logs
/// it once with the request's correlation id.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The error's code (`conflict`, `card_declined`, ...).
    pub code: &'static str,
    /// Why, as the client was told.
    pub reason: String,
}

/// The `code` of the 409 that answers a request whose `Idempotency-Key` is still being
/// processed: the first request may yet succeed, so a client must not take it for a refusal.
pub const IN_FLIGHT_CODE: &str = "request_in_flight";

pub use crate::logfmt::cause_chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, cause) = match &self {
            ApiError::Internal(detail) => ("internal error".to_string(), Some(detail.clone())),
            ApiError::Unavailable(detail) | ApiError::Storage(detail) => {
                (detail.clone(), Some(detail.clone()))
            }
            other => (other.to_string(), None),
        };
        // A business refusal (declined, conflict, a rule broken) is logged once by the
        // request's middleware, with its reason; messages never carry personal or card data.
        let refusal = matches!(
            self,
            ApiError::Declined { .. }
                | ApiError::Conflict(_)
                | ApiError::Refused { .. }
                | ApiError::Validation(_)
        )
        .then(|| Refusal {
            code,
            reason: message.clone(),
        });
        let body = ErrorBody {
            error: ErrorDetail { code, message },
        };
        let retry_after = match &self {
            ApiError::Unavailable(_) | ApiError::Storage(_) => Some(1),
            ApiError::RateLimited(seconds) => Some(*seconds),
            _ => None,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        if let Some(refusal) = refusal {
            response.extensions_mut().insert(refusal);
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(invalid: crate::domain::Invalid) -> Self {
        ApiError::Validation(invalid.0)
    }
}

impl<R: Into<ApiError>> From<crate::db::Undone<R>> for ApiError {
    fn from(undone: crate::db::Undone<R>) -> Self {
        match undone {
            crate::db::Undone::Refused(refused) => refused.into(),
            crate::db::Undone::Store(err) => err.into(),
        }
    }
}

impl From<crate::db::StoreError> for ApiError {
    fn from(err: crate::db::StoreError) -> Self {
        use crate::db::StoreError;
        match err {
            // A full disk, a read-only file or a failing device is an outage of storage, not
            // a bug: say so and let the client retry once it is fixed.
            StoreError::Storage(why) => {
                ApiError::Storage(format!("cannot write the database: {why}"))
            }
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
            StoreError::Failed(why) => ApiError::Internal(why),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        ApiError::from(crate::db::StoreError::from(&err))
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(err: r2d2::Error) -> Self {
        ApiError::from(crate::db::StoreError::from(err))
    }
}

impl crate::db::StoreFailure for ApiError {
    fn storage_problem(&self) -> Option<String> {
        match self {
            ApiError::Storage(why) => Some(why.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail_from_the_client_and_carry_it_for_the_log() {
        let response = ApiError::internal("secret table name").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<ErrorCause>().unwrap();
        assert!(cause.0.contains("secret table name"));
        let client_error = ApiError::Conflict("taken".into()).into_response();
        assert!(client_error.extensions().get::<ErrorCause>().is_none());
    }

    #[test]
    fn a_cause_chain_names_every_source() {
        let parse = "x".parse::<i64>().unwrap_err();
        let err = rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(parse),
        );
        let text = cause_chain(&err);
        assert!(text.contains("invalid digit"), "{text}");
        assert!(
            matches!(ApiError::from(err), ApiError::Internal(d) if d.contains("invalid digit"))
        );
    }

    #[test]
    fn every_variant_has_a_distinct_code_and_an_error_status() {
        let errors = [
            ApiError::BadRequest(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::Declined {
                code: "card_declined",
                message: String::new(),
            },
            ApiError::NotFound(String::new()),
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge(String::new()),
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::Validation(String::new()),
            ApiError::RateLimited(1),
            ApiError::Unavailable(String::new()),
            ApiError::Storage(String::new()),
            ApiError::Internal(String::new()),
        ];
        assert!(errors.iter().all(|e| e.status_and_code().0.as_u16() >= 400));
        let mut codes: Vec<&str> = errors.iter().map(|e| e.status_and_code().1).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }
}
