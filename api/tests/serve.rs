//! `tourwise serve` as an operator meets it: the real binary, port 0, SIGTERM (CONTRACT 1).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start(extra: &[&str]) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tourwise"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--database-url", &db])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read the first line on a thread: a server stuck at start-up fails the test, not CI.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("serve printed nothing within 60 s");
        }
    };
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_owned();
    Serve {
        child,
        base,
        _dir: dir,
    }
}

/// Runs a command to completion, killing it (and failing) if it takes over a minute.
fn output_within_a_minute(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn serves_health_and_json_errors_then_stops_on_sigterm() {
    let mut serve = start(&[]);
    assert!(serve.base.starts_with("http://127.0.0.1:"));
    let client = reqwest::Client::new();

    let health = client
        .get(format!("{}/healthz", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = client
        .get(format!("{}/readyz", serve.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["dependencies"]["database"], true);

    let missing = client
        .get(format!("{}/no/such/thing", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // SIGTERM: a clean exit, promptly.
    let pid = serve.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn unreachable_database_fails_fast_with_one_line() {
    let out = output_within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_tourwise"))
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--database-url",
                "postgres://postgres:secret@127.0.0.1:1/nowhere",
            ])
            .env("RUST_LOG", "off"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("tourwise: database"), "{stderr}");
    assert!(!lines[0].contains("secret"), "{stderr}");
}

#[test]
fn unreachable_redis_kafka_or_smtp_relay_fails_fast_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    for (flag, url, named) in [
        (
            "--redis-url",
            "redis://:secret@127.0.0.1:1",
            "tourwise: Redis",
        ),
        ("--kafka-brokers", "127.0.0.1:1", "tourwise: Kafka brokers"),
        (
            "--smtp-url",
            "smtp://mail:secret@127.0.0.1:1",
            "tourwise: SMTP relay",
        ),
    ] {
        let out = output_within_a_minute(
            Command::new(env!("CARGO_BIN_EXE_tourwise"))
                .args(["serve", "--http-addr", "127.0.0.1:0", "--database-url", &db])
                .args([flag, url])
                .env("RUST_LOG", "off"),
        );
        assert!(!out.status.success(), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with(named), "{stderr}");
        assert!(!lines[0].contains("secret"), "{stderr}");
    }
}

#[test]
fn unreachable_media_store_fails_fast_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let out = output_within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_tourwise"))
            .args(["serve", "--http-addr", "127.0.0.1:0", "--database-url", &db])
            .args(["--media-url", "s3://nowhere"])
            .env("AWS_ACCESS_KEY_ID", "key")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("RUST_LOG", "off"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("tourwise: media store s3://nowhere is unreachable"),
        "{stderr}"
    );
}

#[tokio::test]
async fn readyz_reports_redis_when_configured() {
    // CI starts Redis on 127.0.0.1:6379 (see .ci/run).
    let serve = start(&["--redis-url", "redis://127.0.0.1:6379"]);
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", serve.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["dependencies"]["redis"], true, "{ready}");
    assert_eq!(ready["ready"], true, "{ready}");
}

#[test]
fn migrate_applies_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    for _ in 0..2 {
        let out = output_within_a_minute(
            Command::new(env!("CARGO_BIN_EXE_tourwise"))
                .args(["migrate", "--database-url", &db])
                .env("RUST_LOG", "off"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `tourwise simulate` (CONTRACT 1): every generated event ends assigned or unassignable, the
/// summary says so, and the CSV and GeoJSON hold one row / feature per tour.
#[test]
fn simulate_settles_every_event_and_writes_the_tours() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, geojson) = (dir.path().join("t.csv"), dir.path().join("t.geojson"));
    let out = output_within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_tourwise"))
            .args([
                "simulate",
                "--realtors",
                "300",
                "--events",
                "600",
                "--days",
                "2",
            ])
            .args(["--quiet", "--csv"])
            .arg(&csv)
            .arg("--geojson")
            .arg(&geojson)
            .env("RUST_LOG", "warn"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figure = |name: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} line in {stdout}"));
        line[name.len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    assert_eq!(figure("events "), 600);
    assert_eq!(
        figure("assigned ") + figure("unassignable "),
        600,
        "{stdout}"
    );
    assert!(
        figure("assigned ") > 300,
        "most tours fit a 300-realtor city: {stdout}"
    );
    assert!(stdout.contains("event -> outcome p99"), "{stdout}");

    let rows: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), 601, "a header and a row per tour");
    assert!(rows[0].starts_with("tour_id,payment_id,status,realtor_id"));
    let assigned_rows = rows[1..]
        .iter()
        .filter(|r| r.split(',').nth(2) == Some("assigned"))
        .count() as u64;
    assert_eq!(assigned_rows, figure("assigned "));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&geojson).unwrap()).unwrap();
    assert_eq!(doc["type"], "FeatureCollection");
    let features = doc["features"].as_array().unwrap();
    assert_eq!(features.len(), 600);
    let lng = features[0]["geometry"]["coordinates"][0].as_f64().unwrap();
    assert!((-10.0..-8.5).contains(&lng), "GeoJSON is [lng, lat]: {lng}");
}

#[test]
fn simulate_rejects_out_of_range_flags_with_one_line() {
    let out = output_within_a_minute(
        Command::new(env!("CARGO_BIN_EXE_tourwise"))
            .args(["simulate", "--events", "0"])
            .env("RUST_LOG", "off"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--events"), "{stderr}");
}
