//! Authentication: argon2id password hashes, HS256 access tokens, and the [`Caller`]
//! extractor that rejects missing, tampered, expired, `alg: none` and wrong-key tokens (401).

use std::future::{ready, Ready};
use std::path::Path;

use actix_web::{web, FromRequest, HttpRequest};
use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, Code};
use crate::perm::{self, Access, Capability, Role};
use crate::state::AppState;

/// The `iss` claim of every token.
pub const ISSUER: &str = "tourwise";
/// How long an access token lives, in seconds.
pub const TOKEN_TTL_SECONDS: i64 = 3600;
/// File (in the data dir) that keeps the generated secret across restarts.
pub const SECRET_FILE: &str = "tourwise-jwt.secret";

/// The claims of an access token (CONTRACT 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's role.
    pub role: Role,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Always [`ISSUER`].
    pub iss: String,
}

/// Signs and checks access tokens.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Jwt {
    /// Keys from a shared secret.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `user` valid for [`TOKEN_TTL_SECONDS`].
    ///
    /// # Errors
    /// When signing fails (it does not with HS256).
    pub fn issue(&self, user: Uuid, role: Role) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            role,
            exp: now + TOKEN_TTL_SECONDS,
            iat: now,
            iss: ISSUER.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(&e))
    }

    /// The claims of a valid token.
    ///
    /// # Errors
    /// 401 for anything but a valid, unexpired HS256 token signed with this secret.
    pub fn check(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::new(Code::InvalidToken, "invalid or expired access token"))
    }
}

/// The configured secret, or the one kept in `data_dir` (generated on first start).
///
/// # Errors
/// When the secret file cannot be read or written.
pub fn load_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!("{} is too short to be a secret", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, secret.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// An argon2id PHC hash of `password` (runs on a blocking thread).
///
/// # Errors
/// When hashing fails.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    web::block(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&std::io::Error::other(e)))
}

/// Whether `password` matches the stored hash (runs on a blocking thread).
pub async fn verify_password(password: String, hash: String) -> bool {
    web::block(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// An authenticated caller (from a valid bearer token).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// User id.
    pub id: Uuid,
    /// Role.
    pub role: Role,
}

impl Caller {
    /// How far this caller may use `capability` (CONTRACT 3).
    ///
    /// # Errors
    /// 403 when the role forbids it.
    pub fn may(&self, capability: Capability) -> Result<Access, ApiError> {
        perm::access(self.role, capability).ok_or_else(ApiError::forbidden)
    }

    /// Whether `owner` is within reach for an access level.
    #[must_use]
    pub fn reaches(&self, access: Access, owner: Uuid) -> bool {
        access == Access::Any || owner == self.id
    }
}

fn caller_from(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(Code::InvalidToken, "expected Authorization: Bearer <token>")
        })?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("no app state")))?;
    let claims = state.jwt.check(token)?;
    Ok(Some(Caller {
        id: claims.sub,
        role: claims.role,
    }))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(caller_from(req).and_then(|c| {
            c.ok_or_else(|| ApiError::new(Code::Unauthenticated, "an access token is required"))
        }))
    }
}

/// The caller of an endpoint browsers reach with `EventSource` (which cannot send headers):
/// the `Authorization` header when present, otherwise `?access_token=`.
///
/// # Errors
/// 401 without a token or with an invalid one.
pub fn caller_from_header_or_query(req: &HttpRequest) -> Result<Caller, ApiError> {
    if let Some(caller) = caller_from(req)? {
        return Ok(caller);
    }
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map_err(|_| ApiError::new(Code::BadRequest, "invalid query string"))?;
    let token = query
        .get("access_token")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(Code::Unauthenticated, "an access token is required"))?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("no app state")))?;
    let claims = state.jwt.check(token)?;
    Ok(Caller {
        id: claims.sub,
        role: claims.role,
    })
}

/// A caller who may be anonymous; a token that is present must still be valid.
#[derive(Debug, Clone, Copy)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(caller_from(req).map(MaybeCaller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_other_keys_fail() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let id = Uuid::new_v4();
        let token = jwt.issue(id, Role::Realtor).unwrap();
        let claims = jwt.check(&token).unwrap();
        assert_eq!((claims.sub, claims.role), (id, Role::Realtor));
        let other = Jwt::new(b"another secret, also long enough!!");
        assert!(other.check(&token).is_err());
        assert!(jwt.check("garbage").is_err());
    }

    #[test]
    fn a_generated_secret_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_secret(None, dir.path()).unwrap();
        let b = load_secret(None, dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(load_secret(Some("given"), dir.path()).unwrap(), b"given");
    }
}
