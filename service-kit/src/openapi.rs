//! The OpenAPI pieces every service shares: the `X-API-Key` security scheme, the
//! `GET /openapi.json` route serving a service's document, and Swagger UI for it at
//! `/docs` (its files compiled into the binary: nothing is downloaded at build or run time).

use axum::Router;
use axum::routing::get;
use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The answers every key-protected route may give besides its own: document them with
/// `responses(..., ProtectedErrors)`.
#[derive(Debug, utoipa::IntoResponses)]
pub enum ProtectedErrors {
    /// 401.
    #[response(status = 401, description = "Missing or wrong X-API-Key")]
    Unauthorized(crate::error::ErrorBody),
    /// 429.
    #[response(status = 429, description = "Over the key's rate")]
    RateLimited(crate::error::ErrorBody),
    /// 503.
    #[response(status = 503, description = "The database cannot be used")]
    Unavailable(crate::error::ErrorBody),
}

/// The name of the bearer scheme a customer's access token is sent in.
pub const SESSION_SCHEME: &str = "session";

/// Adds the `api_key` scheme (`X-API-Key` header) that every protected path names, the
/// customer's `session` bearer scheme and the scraper's `metrics_token`.
#[derive(Debug)]
pub struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An admin key (--api-key) may call every route; a storefront key \
                 (--storefront-key) those whose x-scope is storefront, and with a customer's \
                 session those whose x-scope is customer (admin routes: 403).",
            ))),
        );
        components.add_security_scheme(
            SESSION_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A customer's access token from POST /sessions, sent with the storefront \
                         key: routes marked x-scope customer then show that customer's own",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "--metrics-token: opens GET /metrics only, as a Prometheus scraper sends it",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json` and Swagger UI for it at `/docs`, open like the probes (the UI's
/// "Authorize" takes the key its "Try it out" sends).
pub fn route(document: OpenApi) -> Router {
    let json = document.to_json().unwrap_or_else(|_| "{}".to_string());
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from("/openapi.json").persist_authorization(true));
    Router::from(docs).route(
        "/openapi.json",
        get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                json,
            )
        }),
    )
}
