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
    /// The database the app runs on.
    pub db_url: String,
    /// Its data dir (the `.eml` files are in `mail/` under it).
    pub data_dir: std::path::PathBuf,
    pub bus: std::sync::Arc<dyn actors::bus::EventBus>,
    pub client: reqwest::Client,
    stopper: api::server::Stopper,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub async fn spawn_app() -> App {
    spawn_with(Db::Sqlite, &[]).await
}

/// The real app on a fresh database (dropped with the app).
pub async fn spawn_with(db: Db, extra: &[&str]) -> App {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, dir.path()).await;
    let mut app = spawn_on(&url, dir.path(), extra).await;
    app._dir = Some(dir);
    app
}

/// The URL of a new, empty database: a SQLite file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
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
    }
}

/// The real app on the database at `url`, keeping its files in `data_dir`.
pub async fn spawn_on(url: &str, data_dir: &std::path::Path, extra: &[&str]) -> App {
    let data = data_dir.display().to_string();
    let mut args = vec![
        "tourwise",
        "serve",
        "--http-addr",
        "127.0.0.1:0",
        "--database-url",
        url,
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
    let stopper = bound.stopper();
    let task = tokio::spawn(bound.run());
    App {
        base,
        db_url: url.to_owned(),
        data_dir: data_dir.to_path_buf(),
        bus,
        client: reqwest::Client::new(),
        stopper,
        task,
        _dir: None,
    }
}

impl App {
    /// Stops the app as SIGTERM would and waits until the engine has stopped.
    pub async fn shutdown(self) {
        self.stopper.stop().await;
        self.task.await.unwrap().unwrap();
    }

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
            // Only /metrics and event streams answer text; everything else must be JSON.
            serde_json::from_str(&text).unwrap_or_else(|_| {
                assert!(
                    path.starts_with("/metrics") || path.contains("/events"),
                    "{path}: not JSON: {text}"
                );
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
        self.register_email(&email, role).await
    }

    /// Registers `email` (password `password123`) with `role`: its id and a token.
    pub async fn register_email(&self, email: &str, role: &str) -> (Uuid, String) {
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
        let token = self.login(email, "password123").await;
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

/// Working hours every day, all day (so any window is workable).
pub fn all_day() -> Value {
    let hours: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"}))
        .collect();
    Value::Array(hours)
}

impl App {
    /// Gives the realtor `token` a profile at (lat, lng) working all day, and makes them available.
    pub async fn set_realtor(&self, token: &str, lat: f64, lng: f64) {
        let profile = json!({"home": {"lat": lat, "lng": lng}, "service_radius_km": 50.0,
                             "time_zone": "UTC", "working_hours": all_day()});
        let (status, body) = self
            .call(Method::PUT, "/realtors/me", Some(token), Some(profile))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self
            .call(
                Method::PATCH,
                "/realtors/me/status",
                Some(token),
                Some(json!({"status": "available"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The customer checks out `listing` alone (the cart is emptied first) for `window`: the
    /// payment id, not paid yet.
    pub async fn checkout(&self, customer: &str, listing: &str, window: Value) -> String {
        let (_, cart) = self.call(Method::GET, "/cart", Some(customer), None).await;
        for item in cart["items"].as_array().into_iter().flatten() {
            let path = format!("/cart/items/{}", item["id"].as_str().unwrap());
            let (status, _) = self.call(Method::DELETE, &path, Some(customer), None).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, body) = self
            .call(
                Method::POST,
                "/cart/items",
                Some(customer),
                Some(json!({"listing_id": listing})),
            )
            .await;
        assert!(status.is_success(), "{body}");
        let (status, payment) = self
            .call(
                Method::POST,
                "/cart/checkout",
                Some(customer),
                Some(json!({"window": window})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{payment}");
        payment["payment_id"].as_str().unwrap().to_owned()
    }

    /// The customer books `listing` alone (the cart is emptied first) for `window` and pays:
    /// the payment id.
    pub async fn pay_for(&self, customer: &str, listing: &str, window: Value) -> String {
        let id = self.checkout(customer, listing, window).await;
        let (status, paid) = self
            .call(
                Method::POST,
                "/payments",
                Some(customer),
                Some(json!({"payment_id": id, "card_token": "tok_visa"})),
            )
            .await;
        assert_eq!(
            (status, paid["status"].as_str()),
            (StatusCode::OK, Some("succeeded")),
            "{paid}"
        );
        id
    }

    /// The tour of `payment` once it is no longer pending (60 s at most).
    pub async fn settled_tour(&self, token: &str, payment: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (status, tours) = self
                .call(
                    Method::GET,
                    &format!("/tours?payment_id={payment}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{tours}");
            if let Some(tour) = tours["items"].as_array().and_then(|t| t.first()) {
                if tour["status"] != "pending" {
                    return tour.clone();
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no assignment in time: {tours}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Applies realtor actions (`accept`, `start`, `complete`, ...) to a tour, each must succeed.
    pub async fn drive(&self, token: &str, tour: &str, actions: &[&str]) -> Value {
        let mut last = Value::Null;
        for action in actions {
            let (status, body) = self
                .call(
                    Method::POST,
                    &format!("/tours/{tour}/{action}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{action}: {body}");
            last = body;
        }
        last
    }

    /// A tour of `customer` on `listing` (a realtor must be able to take it), worked to
    /// `completed` by an admin: its id.
    pub async fn completed_tour(&self, customer: &str, listing: &str, admin: &str) -> String {
        let payment = self.pay_for(customer, listing, window()).await;
        let tour = self.settled_tour(customer, &payment).await;
        assert_eq!(tour["status"], "assigned", "{tour}");
        let id = tour["id"].as_str().unwrap().to_owned();
        self.drive(admin, &id, &["accept", "start", "complete"])
            .await;
        id
    }
}
