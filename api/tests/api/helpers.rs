//! `spawn_app`: the real server on port 0 against a fresh SQLite (or PostgreSQL) database,
//! with typed helpers.

use api::config::{Cli, Command};
use clap::Parser as _;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use uuid::Uuid;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub const ADMIN_EMAIL: &str = "root@tourwise.test";
pub const ADMIN_PASSWORD: &str = "root-password";

pub struct App {
    pub base: String,
    pub bus: std::sync::Arc<dyn actors::bus::EventBus>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub async fn spawn_app() -> App {
    spawn_with(Db::Sqlite, &[]).await
}

pub async fn spawn_with(db: Db, extra: &[&str]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        Db::Postgres => {
            let server = std::env::var("TOURWISE_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("tourwise_api_{}", Uuid::new_v4().simple());
            let admin = Database::connect(format!("{server}/postgres"))
                .await
                .unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            format!("{server}/{name}")
        }
    };
    let data = dir.path().display().to_string();
    let mut args = vec![
        "tourwise",
        "serve",
        "--http-addr",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--jwt-secret",
        SECRET,
        "--admin-email",
        ADMIN_EMAIL,
        "--admin-password",
        ADMIN_PASSWORD,
        "--data-dir",
        &data,
    ];
    args.extend_from_slice(extra);
    let Command::Serve(config) = Cli::try_parse_from(args).unwrap().command else {
        unreachable!()
    };
    let bound = api::server::bind(&config).await.unwrap();
    let base = format!("http://{}", bound.addr);
    let bus = bound.bus.clone();
    tokio::spawn(bound.run());
    App {
        base,
        bus,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl App {
    /// Any request; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            // Only /metrics answers text; everything else must be JSON.
            serde_json::from_str(&text).unwrap_or_else(|_| {
                assert!(path.starts_with("/metrics"), "{path}: not JSON: {text}");
                Value::String(text)
            })
        };
        (status, value)
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
        (status, value)
    }

    pub async fn register(&self, role: &str) -> (Uuid, String) {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        let (status, user) = self
            .call(
                Method::POST,
                "/iam/register",
                None,
                Some(
                    json!({"email": email, "password": "password123", "name": role, "role": role}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let token = self.login(&email, "password123").await;
        (user["id"].as_str().unwrap().parse().unwrap(), token)
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/iam/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// A published listing owned by the provider `token`.
    pub async fn published_listing(&self, token: &str, lat: f64, lng: f64) -> String {
        let (status, listing) = self
            .call(
                Method::POST,
                "/listings",
                Some(token),
                Some(json!({"title": "Flat", "address": "Rua 1", "location": {"lat": lat, "lng": lng}, "price_cents": 2500})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{listing}");
        let id = listing["id"].as_str().unwrap().to_owned();
        let (status, _) = self
            .call(
                Method::POST,
                &format!("/listings/{id}/publish"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        id
    }
}

/// A window starting tomorrow.
pub fn window() -> Value {
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let end = start + chrono::Duration::hours(8);
    json!({"start": start.to_rfc3339(), "end": end.to_rfc3339()})
}

pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}
