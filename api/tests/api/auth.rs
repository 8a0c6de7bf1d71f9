//! Tokens and rate limits: tampered, expired, `alg: none` and wrong-key tokens are 401;
//! login and payment limits answer 429 with Retry-After.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_with, Db, SECRET};

fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn sign(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn bad_tokens_are_401_and_good_ones_pass() {
    let app = spawn_app().await;
    let (id, token) = app.register("customer").await;
    let (status, me) = app.call(Method::GET, "/iam/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], id.to_string());
    assert_eq!(me["role"], "customer");

    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, role: &str| json!({"sub": id, "role": role, "exp": exp, "iat": now, "iss": "tourwise"});
    // The same claims signed right are accepted (so the cases below fail for their reason).
    let good = sign(SECRET, &claims(now + 600, "customer"));
    assert_eq!(
        app.call(Method::GET, "/iam/me", Some(&good), None).await.0,
        200
    );

    let mut tampered_parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    tampered_parts[1] = b64url(
        serde_json::to_string(&claims(now + 600, "admin"))
            .unwrap()
            .as_bytes(),
    );
    let tampered = tampered_parts.join(".");
    let expired = sign(SECRET, &claims(now - 3600, "customer"));
    let wrong_key = sign(
        "another-secret-that-is-long-enough",
        &claims(now + 600, "customer"),
    );
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(
            serde_json::to_string(&claims(now + 600, "admin"))
                .unwrap()
                .as_bytes()
        )
    );
    let wrong_issuer = sign(
        SECRET,
        &json!({"sub": id, "role": "admin", "exp": now + 600, "iss": "evil"}),
    );
    for bad in [
        tampered.as_str(),
        expired.as_str(),
        wrong_key.as_str(),
        none.as_str(),
        wrong_issuer.as_str(),
        "not.a.token",
        "",
    ] {
        let (status, body) = app.call(Method::GET, "/iam/me", Some(bad), None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED);
        let (status, body) = app
            .call(Method::GET, "/assignments/stats", Some(bad), None)
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app.call(Method::GET, "/iam/me", None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    // A bad token on a public read is still refused, not silently ignored.
    let (status, _) = app
        .call(Method::GET, "/listings", Some("garbage"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_is_limited_per_email_with_retry_after() {
    let app = spawn_app().await;
    let email = "limited@example.com";
    let (status, _) = app
        .call(
            Method::POST,
            "/iam/register",
            None,
            Some(
                json!({"email": email, "password": "password123", "name": "L", "role": "customer"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let attempt = |password: &'static str| {
        app.client
            .post(format!("{}/iam/login", app.base))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let (unknown_status, unknown) = app
        .call(
            Method::POST,
            "/iam/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "password123"})),
        )
        .await;
    assert_error(unknown_status, &unknown, StatusCode::UNAUTHORIZED);
    for _ in 0..5 {
        let resp = attempt("wrong-password").await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = resp.json().await.unwrap();
        // Same message for a wrong password and an unknown email.
        assert_eq!(body["error"]["message"], unknown["error"]["message"]);
    }
    let resp = attempt("password123").await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn login_is_limited_per_ip_and_payments_per_customer() {
    let app = spawn_with(
        Db::Sqlite,
        &[
            "--login-attempts-per-ip",
            "3",
            "--payments-per-customer",
            "2",
        ],
    )
    .await;
    let (_, token) = app.register("customer").await; // one login attempt
    for _ in 0..2 {
        let (status, _) = app
            .call(
                Method::POST,
                "/iam/login",
                None,
                Some(json!({"email": "x@example.com", "password": "whatever1"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/iam/login",
            None,
            Some(json!({"email": "y@example.com", "password": "whatever1"})),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS);

    let pay = json!({"payment_id": uuid::Uuid::new_v4(), "card_token": "tok_ok"});
    for _ in 0..2 {
        let (status, _) = app
            .call(Method::POST, "/payments", Some(&token), Some(pay.clone()))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let resp = app
        .client
        .post(format!("{}/payments", app.base))
        .bearer_auth(&token)
        .json(&pay)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}
