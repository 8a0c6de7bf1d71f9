//! Every endpoint that takes a JSON body, against arbitrary bodies, through the real server
//! (HTTP on loopback, SQLite in a temporary folder, every actor running).

use std::time::Duration;

use clap::Parser as _;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// A running server with an account of every role and one of everything a path names.
pub struct Target {
    runtime: tokio::runtime::Runtime,
    base: String,
    client: Client,
    /// (method, path, bearer token): the first input byte picks one.
    endpoints: Vec<(Method, String, Option<String>)>,
    _dir: tempfile::TempDir,
}

impl Target {
    /// Starts the server and creates the accounts, a listing, a category and a tour.
    ///
    /// # Panics
    /// When the server does not start or the set-up requests fail.
    #[must_use]
    pub fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let base = runtime.block_on(serve(dir.path()));
        let mut target = Self {
            runtime,
            base,
            client: Client::new(),
            endpoints: Vec::new(),
            _dir: dir,
        };
        target.endpoints = target.runtime.block_on(target.set_up());
        target
    }

    /// Sends `data[1..]` as the body of endpoint `data[0]`.
    ///
    /// # Panics
    /// When the answer is a 5xx, or an error without the contract's JSON error body.
    pub fn check(&self, data: &[u8]) {
        let Some((&pick, body)) = data.split_first() else {
            return;
        };
        let (method, path, token) = &self.endpoints[usize::from(pick) % self.endpoints.len()];
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, text) = self.runtime.block_on(async {
            let response = request.send().await.expect("the server answers");
            let status = response.status();
            (status, response.text().await.expect("a whole body"))
        });
        assert!(
            !status.is_server_error(),
            "{method} {path}: {status} {text}"
        );
        if status.is_client_error() {
            let error: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path}: {status}, not JSON: {text}"));
            assert!(
                error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                "{method} {path}: {status} {text}"
            );
        }
    }

    async fn set_up(&self) -> Vec<(Method, String, Option<String>)> {
        let provider = self.account("provider").await;
        let customer = self.account("customer").await;
        let realtor = self.account("realtor").await;
        let admin = self.login("admin@tourwise.fuzz", "admin-password").await;
        let listing = self
            .call(
                Method::POST,
                "/listings",
                &provider,
                json!({"title": "Flat", "address": "Rua 1",
                "location": {"lat": 38.72, "lng": -9.14}, "price_cents": 2500}),
            )
            .await["id"]
            .as_str()
            .expect("a listing")
            .to_owned();
        self.call(
            Method::POST,
            &format!("/listings/{listing}/publish"),
            &provider,
            Value::Null,
        )
        .await;
        let category = self
            .call(
                Method::POST,
                "/categories",
                &admin,
                json!({"name": "Flats"}),
            )
            .await["id"]
            .as_str()
            .expect("a category")
            .to_owned();
        let tour = self.tour(&customer, &listing).await;
        let some = |token: &String| Some(token.clone());
        vec![
            (Method::POST, "/iam/register".into(), None),
            (Method::POST, "/iam/login".into(), None),
            (Method::POST, "/iam/password-reset".into(), None),
            (Method::POST, "/iam/password-reset/confirm".into(), None),
            (Method::POST, "/listings".into(), some(&provider)),
            (
                Method::PATCH,
                format!("/listings/{listing}"),
                some(&provider),
            ),
            (Method::POST, "/categories".into(), some(&admin)),
            (
                Method::PATCH,
                format!("/categories/{category}"),
                some(&admin),
            ),
            (Method::PUT, "/realtors/me".into(), some(&realtor)),
            (Method::PATCH, "/realtors/me/status".into(), some(&realtor)),
            (Method::POST, "/cart/items".into(), some(&customer)),
            (Method::POST, "/cart/checkout".into(), some(&customer)),
            (Method::POST, "/payments".into(), some(&customer)),
            (
                Method::POST,
                format!("/tours/{tour}/review"),
                some(&customer),
            ),
            (
                Method::POST,
                format!("/tours/{tour}/messages"),
                some(&customer),
            ),
            (Method::PATCH, format!("/tours/{tour}"), some(&customer)),
        ]
    }

    /// A paid tour of `customer` for `listing` (unassignable: no realtor has a profile yet).
    async fn tour(&self, customer: &str, listing: &str) -> String {
        self.call(
            Method::POST,
            "/cart/items",
            customer,
            json!({"listing_id": listing}),
        )
        .await;
        let start = chrono::Utc::now() + chrono::Duration::days(1);
        let window = json!({"start": start.to_rfc3339(),
                            "end": (start + chrono::Duration::hours(8)).to_rfc3339()});
        let payment = self
            .call(
                Method::POST,
                "/cart/checkout",
                customer,
                json!({"window": window}),
            )
            .await["payment_id"]
            .as_str()
            .expect("a payment")
            .to_owned();
        self.call(
            Method::POST,
            "/payments",
            customer,
            json!({"payment_id": payment, "card_token": "tok_visa"}),
        )
        .await;
        for _ in 0..600 {
            let tours = self
                .call(
                    Method::GET,
                    &format!("/tours?payment_id={payment}"),
                    customer,
                    Value::Null,
                )
                .await;
            if let Some(id) = tours["items"][0]["id"].as_str() {
                if tours["items"][0]["status"] != "pending" {
                    return id.to_owned();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the tour of payment {payment} was not settled in 30 s");
    }

    async fn account(&self, role: &str) -> String {
        let email = format!("{role}@tourwise.fuzz");
        self.call(
            Method::POST,
            "/iam/register",
            "",
            json!({"email": email,
            "password": "password123", "name": role, "role": role}),
        )
        .await;
        self.login(&email, "password123").await
    }

    async fn login(&self, email: &str, password: &str) -> String {
        self.call(
            Method::POST,
            "/iam/login",
            "",
            json!({"email": email, "password": password}),
        )
        .await["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// A set-up request that must succeed; its JSON answer.
    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success() || status == StatusCode::NOT_MODIFIED,
            "{method} {path}: {status} {value}"
        );
        value
    }
}

/// Starts `serve` on a free port with its data in `dir`; its base URL.
async fn serve(dir: &std::path::Path) -> String {
    let url = format!("sqlite://{}?mode=rwc", dir.join("fuzz.db").display());
    let data = dir.display().to_string();
    let args = [
        "tourwise",
        "serve",
        "--http-addr",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--jwt-secret",
        "fuzz-secret-0123456789abcdef0123456789",
        "--admin-email",
        "admin@tourwise.fuzz",
        "--admin-password",
        "admin-password",
        "--data-dir",
        &data,
        // Fuzzing pays and logs in far more often than people do.
        "--payments-per-customer",
        "1000000000",
        "--login-attempts-per-ip",
        "1000000000",
    ];
    let api::config::Command::Serve(config) = api::config::Cli::try_parse_from(args)
        .expect("valid arguments")
        .command
    else {
        unreachable!("serve was asked for")
    };
    let bound = api::server::bind(&config).await.expect("the server binds");
    let base = format!("http://{}", bound.addr);
    tokio::spawn(bound.run());
    base
}
