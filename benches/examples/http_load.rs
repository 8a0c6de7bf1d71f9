//! HTTP load on a real `tourwise serve` over loopback: `GET /tours/{id}` and `POST /payments`.
//!
//! Starts the release binary on port 0 (SQLite in a temporary folder unless `--database-url`
//! names another database), sets up realtors, a published listing and customers with pending
//! payments through the HTTP API, then measures:
//! - `GET /tours/{id}`: `--connections` keep-alive connections, each sending its next request as
//!   soon as the answer arrives, for `--seconds`;
//! - `POST /payments`: `--payments` pending payments paid over the same number of connections
//!   (each succeeded payment is an outbox row the engine consumes and books; that work shares
//!   the machine with the requests).
//!
//! The load generator runs on the same machine as the server, so both share its cores: the
//! figures are what one machine does, client included.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p benches --example http_load -- --connections 64 --seconds 10
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// The `tourwise` binary (default: next to this example's folder, i.e. `target/release/tourwise`).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Database of the server (default: SQLite in a temporary folder).
    #[arg(long)]
    database_url: Option<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Duration of the read test.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Payments paid in the write test.
    #[arg(long, default_value_t = 4000)]
    payments: usize,
    /// Customers the payments are spread over.
    #[arg(long, default_value_t = 40)]
    customers: usize,
}

/// `tourwise serve`, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(
    bin: &PathBuf,
    database_url: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> Server {
    use std::io::BufRead;
    let log = dir.join("serve.log");
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--admin-email",
            "admin@load.test",
            "--admin-password",
            "load-admin-1",
        ])
        // The write test pays thousands of payments per customer and minute.
        .args(["--payments-per-customer", "100000000"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot start {}: {err} (cargo build --release first)",
                bin.display()
            )
        });
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let _ = std::io::BufReader::new(stdout).read_line(&mut line);
    let Some(base) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        panic!(
            "serve did not start: {line:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    Server {
        base: base.to_owned(),
        child,
    }
}

/// One API call that must succeed; its JSON answer.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut request = client.request(method.clone(), &url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Registers a user of `role` and logs in; the access token.
async fn user(client: &reqwest::Client, base: &str, email: &str, role: &str) -> String {
    let post = reqwest::Method::POST;
    let creds = json!({"email": email, "password": "password1"});
    let mut register = creds.clone();
    register["name"] = json!(email);
    register["role"] = json!(role);
    call(
        client,
        post.clone(),
        format!("{base}/iam/register"),
        None,
        Some(register),
    )
    .await;
    let login = call(client, post, format!("{base}/iam/login"), None, Some(creds)).await;
    login["access_token"].as_str().expect("token").to_owned()
}

/// Latencies of one test, and how long it took.
struct Run {
    latencies_us: Vec<u64>,
    errors: usize,
    elapsed: Duration,
}

impl Run {
    fn print(&mut self, what: &str) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let at = |q: f64| {
            let i = ((n as f64 * q).ceil() as usize).clamp(1, n.max(1)) - 1;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "{what:<22} {n:>8} requests  {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            n as f64 / self.elapsed.as_secs_f64(),
            at(0.50),
            at(0.99),
            self.errors
        );
    }
}

/// Runs `connections` workers, each with its own keep-alive connection, calling `request` until
/// it returns `None`; every answer must have status 200.
async fn load<F>(connections: usize, request: F) -> Run
where
    F: Fn(&reqwest::Client) -> Option<reqwest::RequestBuilder> + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while let Some(builder) = request(&client) {
                    let sent = Instant::now();
                    match builder.send().await {
                        Ok(r) if r.status() == reqwest::StatusCode::OK => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed().as_micros() as u64);
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let (latencies, errors) = worker.await.expect("worker");
        run.latencies_us.extend(latencies);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run
}

/// `GET url` with `token` on every connection for `--seconds`.
async fn read_load(args: &Args, url: String, token: String) -> Run {
    let until = Instant::now() + Duration::from_secs(args.seconds);
    load(args.connections, move |client| {
        (Instant::now() < until).then(|| client.get(&url).bearer_auth(&token))
    })
    .await
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let bin = args.bin.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent()
            .and_then(|examples| examples.parent())
            .expect("target/release")
            .join("tourwise")
    });
    let dir = std::env::temp_dir().join(format!("tourwise-http-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("load.db").display()));
    let server = start_server(&bin, &database_url, &dir, &[]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let (post, put, patch) = (
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    );
    println!("server {base} on {database_url}");

    // 20 realtors around Lisbon, every day 08:00-20:00.
    let hours: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "08:00", "end": "20:00"}))
        .collect();
    for i in 0..20 {
        let token = user(&client, &base, &format!("realtor{i}@load.test"), "realtor").await;
        let profile = json!({
            "home": {"lat": 38.70 + f64::from(i) * 0.004, "lng": -9.15 + f64::from(i % 5) * 0.01},
            "service_radius_km": 40.0,
            "time_zone": "Europe/Lisbon",
            "working_hours": hours,
        });
        call(
            &client,
            put.clone(),
            format!("{base}/realtors/me"),
            Some(&token),
            Some(profile),
        )
        .await;
        call(
            &client,
            patch.clone(),
            format!("{base}/realtors/me/status"),
            Some(&token),
            Some(json!({"status": "available"})),
        )
        .await;
    }
    let provider = user(&client, &base, "provider@load.test", "provider").await;
    let listing = call(
        &client,
        post.clone(),
        format!("{base}/listings"),
        Some(&provider),
        Some(json!({"title": "Flat", "address": "Rua A 1", "location": {"lat": 38.72, "lng": -9.14}, "price_cents": 5000})),
    )
    .await["id"]
        .as_str()
        .expect("listing id")
        .to_owned();
    call(
        &client,
        post.clone(),
        format!("{base}/listings/{listing}/publish"),
        Some(&provider),
        None,
    )
    .await;

    // Customers, each with a listing in the cart and its share of pending payments.
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let window = json!({
        "start": format!("{start}T00:00:00Z"),
        "end": format!("{}T00:00:00Z", start + chrono::Days::new(13)),
    });
    let setup = Instant::now();
    let mut pending: Vec<(String, String)> = Vec::new();
    let per_customer = args.payments.div_ceil(args.customers.max(1));
    let customers = futures::future::join_all((0..args.customers).map(|i| {
        let (client, base, listing, window, post) = (
            client.clone(),
            base.clone(),
            listing.clone(),
            window.clone(),
            post.clone(),
        );
        async move {
            let token = user(
                &client,
                &base,
                &format!("customer{i}@load.test"),
                "customer",
            )
            .await;
            call(
                &client,
                post.clone(),
                format!("{base}/cart/items"),
                Some(&token),
                Some(json!({"listing_id": listing})),
            )
            .await;
            let mut ids = Vec::new();
            for _ in 0..per_customer {
                let checkout = call(
                    &client,
                    post.clone(),
                    format!("{base}/cart/checkout"),
                    Some(&token),
                    Some(json!({"window": window})),
                )
                .await;
                ids.push(
                    checkout["payment_id"]
                        .as_str()
                        .expect("payment id")
                        .to_owned(),
                );
            }
            (token, ids)
        }
    }))
    .await;
    for (token, ids) in &customers {
        pending.extend(ids.iter().map(|id| (token.clone(), id.clone())));
    }
    pending.truncate(args.payments);
    println!(
        "setup: 20 realtors, {} customers, {} pending payments in {:.1} s",
        args.customers,
        pending.len(),
        setup.elapsed().as_secs_f64()
    );

    // POST /payments: every pending payment once.
    let payments = Arc::new(pending);
    let next = Arc::new(AtomicUsize::new(0));
    let mut paid = {
        let (payments, next, base) = (payments.clone(), next.clone(), base.clone());
        load(args.connections, move |client| {
            let (token, id) = payments.get(next.fetch_add(1, Ordering::Relaxed))?;
            Some(
                client
                    .post(format!("{base}/payments"))
                    .bearer_auth(token)
                    .json(&json!({"payment_id": id, "card_token": "tok_visa"})),
            )
        })
        .await
    };

    // GET /tours/{id}: one of the tours the payments made, read by its customer.
    let (token, payment) = payments[0].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let tour = loop {
        let page = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/tours?payment_id={payment}"),
            Some(&token),
            None,
        )
        .await;
        if let Some(id) = page["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no tour for {payment} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut read = read_load(&args, format!("{base}/tours/{tour}"), token.clone()).await;
    drop(server);

    // The same read from a server on the same database without the in-memory read model:
    // every request queries the database.
    let server = start_server(&bin, &database_url, &dir, &["--tour-cache", "0"]);
    // The same JWT secret (kept in the data dir): the customer's token still works.
    let mut uncached = read_load(&args, format!("{}/tours/{tour}", server.base), token).await;

    println!(
        "{} connections, client and server on this machine",
        args.connections
    );
    read.print("GET /tours/{id}");
    uncached.print("GET /tours/{id} (--tour-cache 0)");
    paid.print("POST /payments");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
