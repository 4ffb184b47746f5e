//! `/customers` and `/sessions`: a shopper's account, signing in and out.

use crate::AppState;
use crate::customers::{self, AccountRefused, Credentials, CustomerAccount, SignedIn};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use service_kit::auth::Access;
use service_kit::error::ErrorBody;
use service_kit::extract::Json;
use service_kit::openapi::ProtectedErrors;
use std::net::IpAddr;

impl From<AccountRefused> for ApiError {
    fn from(refused: AccountRefused) -> ApiError {
        match refused {
            AccountRefused::WrongCredentials | AccountRefused::BadToken(_) => {
                ApiError::Unauthorized(refused.to_string())
            }
            AccountRefused::TooManyAttempts(secs) => ApiError::RateLimited(secs),
            AccountRefused::Invalid(message) => ApiError::Validation(message),
            AccountRefused::UnknownEmail => ApiError::NotFound(refused.to_string()),
            AccountRefused::NotConfigured => ApiError::Unavailable(refused.to_string()),
            AccountRefused::Store(err) => err.into(),
        }
    }
}

/// The client a request counts against (a shopper's address; the admin's is loopback).
fn client_of(access: &Access) -> IpAddr {
    access.client().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// `POST /customers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpIn {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 10 to 128 characters.
    #[schema(value_type = String, example = "correct horse battery", min_length = 10, max_length = 128)]
    pub password: Secretly,
    #[schema(example = "Ada Lovelace", max_length = 100)]
    pub name: Option<String>,
}

/// What sign-up answers, whether or not the email had an account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignUpOut {
    /// Always `accepted`.
    pub status: &'static str,
    pub message: &'static str,
}

/// A customer as they see themselves.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerOut {
    /// `cus_` and 32 hex digits: the user id their carts and orders are filed under.
    #[schema(example = "cus_01939a3f9ac47c2b8d5e6f7a8b9c0d1e")]
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: String,
}

impl From<CustomerAccount> for CustomerOut {
    fn from(a: CustomerAccount) -> Self {
        CustomerOut {
            id: a.id,
            email: a.email,
            name: a.name,
            created_at: a.created_at,
        }
    }
}

/// `POST /sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInIn {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(value_type = String, example = "correct horse battery")]
    pub password: Secretly,
}

impl std::fmt::Debug for Secretly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A token in a body (`refresh_token`, `reset_token`); never printed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Secretly(pub String);

/// `POST /sessions/refresh` and `POST /sessions/sign-out`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    #[schema(value_type = String)]
    pub refresh_token: Secretly,
}

/// A session: send `access_token` as `Authorization: Bearer` with the storefront key; trade
/// `refresh_token` for a new session before it runs out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives (at most 900).
    pub expires_in: u64,
    pub refresh_token: String,
    pub customer: CustomerOut,
}

impl From<SignedIn> for SessionOut {
    fn from(s: SignedIn) -> Self {
        SessionOut {
            access_token: s.access_token,
            token_type: "Bearer",
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            customer: s.customer.into(),
        }
    }
}

/// `PUT /customers/me/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeIn {
    #[schema(value_type = String)]
    pub current_password: Secretly,
    #[schema(value_type = String, min_length = 10, max_length = 128)]
    pub new_password: Secretly,
}

/// `POST /customers/password-resets` (admin).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetAskIn {
    pub email: String,
}

/// A reset token for the admin to pass on to the customer (until the shop sends mail).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetOut {
    pub reset_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// `POST /customers/reset-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetUseIn {
    #[schema(value_type = String)]
    pub reset_token: Secretly,
    #[schema(value_type = String, min_length = 10, max_length = 128)]
    pub new_password: Secretly,
}

/// Signs up. The answer is the same whether or not the email had an account (so nobody can
/// learn who shops here); then sign in.
#[utoipa::path(
    post,
    path = "/customers",
    tag = "customers",
    request_body = SignUpIn,
    responses(
        (status = 202, description = "Accepted: sign in with this email and password", body = SignUpOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 422, description = "Not an email, or a password of the wrong length", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn customers_sign_up(
    State(state): State<AppState>,
    Json(asked): Json<SignUpIn>,
) -> Result<(StatusCode, Json<SignUpOut>), ApiError> {
    let credentials = Credentials {
        email: asked.email,
        password: asked.password.0,
    };
    customers::sign_up(&state, credentials, asked.name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignUpOut {
            status: "accepted",
            message: "if this email had no account it has one now: sign in with POST /sessions",
        }),
    ))
}

/// The signed-in customer.
#[utoipa::path(
    get,
    path = "/customers/me",
    tag = "customers",
    responses(
        (status = 200, description = "The customer", body = CustomerOut),
        (status = 404, description = "The admin key is nobody's account", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn customers_me(
    State(state): State<AppState>,
    access: Access,
) -> Result<Json<CustomerOut>, ApiError> {
    let not_found = || ApiError::NotFound("no customer is signed in on this request".into());
    let id = access.customer().ok_or_else(not_found)?;
    let account = customers::account(&state, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(account.into()))
}

/// Changes the signed-in customer's password; every one of their sessions ends.
#[utoipa::path(
    put,
    path = "/customers/me/password",
    tag = "customers",
    request_body = PasswordChangeIn,
    responses(
        (status = 204, description = "Changed; sign in again"),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "The current password is wrong", body = ErrorBody),
        (status = 404, description = "The admin key is nobody's account", body = ErrorBody),
        (status = 422, description = "A new password of the wrong length", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn customers_password(
    State(state): State<AppState>,
    access: Access,
    Json(asked): Json<PasswordChangeIn>,
) -> Result<StatusCode, ApiError> {
    let id = access
        .customer()
        .ok_or_else(|| ApiError::NotFound("no customer is signed in on this request".into()))?;
    let (current, new) = (asked.current_password.0, asked.new_password.0);
    customers::change_password(&state, id, current, new, client_of(&access)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a one-hour password reset token for the customer with this email (an admin passes
/// it on, until the shop sends mail).
#[utoipa::path(
    post,
    path = "/customers/password-resets",
    tag = "customers",
    request_body = ResetAskIn,
    responses(
        (status = 201, description = "The token", body = ResetOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 404, description = "No customer has this email", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        (status = 422, description = "A missing field, or a value that breaks a rule (named)", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn customers_reset_issue(
    State(state): State<AppState>,
    Json(asked): Json<ResetAskIn>,
) -> Result<(StatusCode, Json<ResetOut>), ApiError> {
    let (reset_token, expires_at) = customers::issue_reset(&state, &asked.email).await?;
    Ok((
        StatusCode::CREATED,
        Json(ResetOut {
            reset_token,
            expires_at,
        }),
    ))
}

/// Sets a new password with a reset token (once); every session of the customer ends.
#[utoipa::path(
    post,
    path = "/customers/reset-password",
    tag = "customers",
    request_body = ResetUseIn,
    responses(
        (status = 204, description = "Set; sign in with it"),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "The token opens nothing (used, expired, unknown)", body = ErrorBody),
        (status = 422, description = "A new password of the wrong length", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn customers_reset_use(
    State(state): State<AppState>,
    Json(asked): Json<ResetUseIn>,
) -> Result<StatusCode, ApiError> {
    customers::reset_password(&state, &asked.reset_token.0, asked.new_password.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs in. A wrong email and a wrong password get the same answer; after 5 failures for
/// an email or from a client, each attempt waits twice as long as the last (429).
#[utoipa::path(
    post,
    path = "/sessions",
    tag = "customers",
    request_body = SignInIn,
    responses(
        (status = 201, description = "Signed in", body = SessionOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "The email or password is wrong", body = ErrorBody),
        (status = 429, description = "Too many failures: wait Retry-After seconds", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        (status = 422, description = "A missing field, or a value that breaks a rule (named)", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn sessions_sign_in(
    State(state): State<AppState>,
    access: Access,
    Json(asked): Json<SignInIn>,
) -> Result<(StatusCode, Json<SessionOut>), ApiError> {
    let credentials = Credentials {
        email: asked.email,
        password: asked.password.0,
    };
    let signed_in = customers::sign_in(&state, credentials, client_of(&access)).await?;
    Ok((StatusCode::CREATED, Json(signed_in.into())))
}

/// Trades a refresh token for a new session; the old one opens nothing after.
#[utoipa::path(
    post,
    path = "/sessions/refresh",
    tag = "customers",
    request_body = RefreshIn,
    responses(
        (status = 200, description = "A new session", body = SessionOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "The refresh token opens nothing", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        (status = 422, description = "A missing field, or a value that breaks a rule (named)", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn sessions_refresh(
    State(state): State<AppState>,
    Json(asked): Json<RefreshIn>,
) -> Result<Json<SessionOut>, ApiError> {
    Ok(Json(
        customers::refresh(&state, &asked.refresh_token.0)
            .await?
            .into(),
    ))
}

/// Signs out: the refresh token opens nothing after (its access token runs out within
/// 15 minutes).
#[utoipa::path(
    post,
    path = "/sessions/sign-out",
    tag = "customers",
    request_body = RefreshIn,
    responses(
        (status = 204, description = "Signed out (also when the token had ended already)"),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not sent as JSON", body = ErrorBody),
        (status = 422, description = "A missing field, or a value that breaks a rule (named)", body = ErrorBody),
        ProtectedErrors,
    ),
    security(("api_key" = []))
)]
pub async fn sessions_sign_out(
    State(state): State<AppState>,
    Json(asked): Json<RefreshIn>,
) -> Result<StatusCode, ApiError> {
    customers::sign_out(&state, &asked.refresh_token.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
