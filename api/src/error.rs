//! The API's one error type. Every error code has one row in [`error_codes!`]: its wire name
//! and its HTTP status (meilisearch's `make_error_codes!`); the body is always CONTRACT 2's
//! `{"error": {"code", "message"}}` and never carries driver text.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

macro_rules! error_codes {
    ($($variant:ident => $name:literal, $status:ident;)*) => {
        /// Every error code the API answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $(#[doc = $name] $variant,)* }

        impl Code {
            /// All codes, for the table's test.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The wire name.
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The HTTP status.
            #[must_use]
            pub fn status(self) -> StatusCode {
                match self { $(Code::$variant => StatusCode::$status,)* }
            }
        }
    };
}

error_codes! {
    MalformedJson => "malformed_json", BAD_REQUEST;
    BadRequest => "bad_request", BAD_REQUEST;
    Unauthenticated => "unauthenticated", UNAUTHORIZED;
    InvalidToken => "invalid_token", UNAUTHORIZED;
    InvalidCredentials => "invalid_credentials", UNAUTHORIZED;
    InvalidResetToken => "invalid_reset_token", UNPROCESSABLE_ENTITY;
    Forbidden => "forbidden", FORBIDDEN;
    NotFound => "not_found", NOT_FOUND;
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED;
    EmailTaken => "email_taken", CONFLICT;
    Conflict => "conflict", CONFLICT;
    IllegalTransition => "illegal_transition", CONFLICT;
    TourNotCompleted => "tour_not_completed", CONFLICT;
    AlreadyReviewed => "already_reviewed", CONFLICT;
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE;
    UnsupportedMediaType => "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    Invalid => "invalid", UNPROCESSABLE_ENTITY;
    RateLimited => "rate_limited", TOO_MANY_REQUESTS;
    Internal => "internal", INTERNAL_SERVER_ERROR;
    Unavailable => "unavailable", SERVICE_UNAVAILABLE;
}

/// An error answer: a code (hence a status) and a human sentence.
#[derive(Debug)]
pub struct ApiError {
    /// What went wrong.
    pub code: Code,
    /// For the client: never driver text.
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 422 with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::Invalid, message)
    }

    /// 404 for `what`.
    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    /// 403.
    pub fn forbidden() -> Self {
        Self::new(Code::Forbidden, "your role does not allow this")
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(Code::RateLimited, "too many requests; retry later")
        }
    }

    /// 500: the cause goes to the log (whole chain), the client gets a fixed sentence.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(Code::Internal, "internal error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(json!({"error": {"code": self.code.name(), "message": self.message}}))
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::internal(&err)
    }
}

impl From<actors::store::StoreError> for ApiError {
    fn from(err: actors::store::StoreError) -> Self {
        Self::internal(&err)
    }
}

/// Extractor configs that turn actix's text errors into JSON ones (400, never 500).
pub mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::web;

    use super::{ApiError, Code};

    /// `web::Json` errors: malformed JSON, wrong types, missing fields -> 400.
    #[must_use]
    pub fn json() -> web::JsonConfig {
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, _| {
                let api = match &err {
                    JsonPayloadError::ContentType => ApiError::new(
                        Code::UnsupportedMediaType,
                        "expected Content-Type: application/json",
                    ),
                    JsonPayloadError::Overflow { .. }
                    | JsonPayloadError::OverflowKnownLength { .. } => {
                        ApiError::new(Code::PayloadTooLarge, "request body too large")
                    }
                    JsonPayloadError::Deserialize(e) => {
                        ApiError::new(Code::MalformedJson, format!("invalid JSON body: {e}"))
                    }
                    _ => ApiError::new(Code::MalformedJson, "invalid JSON body"),
                };
                api.into()
            })
    }

    /// `web::Query` errors -> 400.
    #[must_use]
    pub fn query() -> web::QueryConfig {
        web::QueryConfig::default().error_handler(|err, _| {
            let QueryPayloadError::Deserialize(e) = &err else {
                return ApiError::new(Code::BadRequest, "invalid query string").into();
            };
            ApiError::new(Code::BadRequest, format!("invalid query string: {e}")).into()
        })
    }

    /// `web::Path` errors (e.g. an id that is not a UUID) -> 404: no such resource.
    #[must_use]
    pub fn path() -> web::PathConfig {
        web::PathConfig::default().error_handler(|err, _| {
            let PathError::Deserialize(_) = &err else {
                return ApiError::new(Code::NotFound, "not found").into();
            };
            ApiError::new(Code::NotFound, "no such resource").into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_one_status_and_a_snake_case_name() {
        let mut names = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(names.insert(code.name()), "duplicate {}", code.name());
            assert!(code
                .name()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
        assert_eq!(Code::Invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(Code::MalformedJson.status(), StatusCode::BAD_REQUEST);
    }
}
