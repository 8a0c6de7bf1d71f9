//! The admin dashboard (issue #10): its files under `/admin`, the live stream of tour changes
//! it follows, the cell outlines of the stats, and the page itself in Chromium.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::events::Events;
use crate::helpers::{assert_error, spawn_app, window, ADMIN_EMAIL, ADMIN_PASSWORD};

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"id="map""#) && html.contains(r#"id="login-form""#));
    // Every asset the page names is served, cacheable for good.
    let assets: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/admin/assets/"))
        .collect();
    assert!(assets.len() >= 2, "{html}");
    for asset in assets {
        let response = app
            .client
            .get(format!("{}{asset}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    // Other paths under /admin are the page (the front end routes); a missing asset is 404.
    let deep = app
        .client
        .get(format!("{}/admin/tours/abc", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(deep.text().await.unwrap(), html);
    let (status, body) = app
        .call(Method::GET, "/admin/assets/missing.js", None, None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    app.shutdown().await;
}

/// Reads events until one satisfies `want`.
async fn wait_for_event(events: &mut Events, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let tour = events.next().await.expect("the stream is open");
        if want(&tour) {
            return tour;
        }
    }
}

#[tokio::test]
async fn admins_follow_every_tour_change_and_see_cell_outlines() {
    let app = spawn_app().await;
    let (_, realtor) = app.register("realtor").await;
    app.set_realtor(&realtor, 38.70, -9.10).await;
    let (_, provider) = app.register("provider").await;
    let listing = app.published_listing(&provider, 38.72, -9.14).await;
    let (_, customer) = app.register("customer").await;
    let admin = app.admin().await;

    // Admins only; the token may be in the query (EventSource cannot send headers).
    let (status, body) = app
        .call(Method::GET, "/assignments/events", Some(&customer), None)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(Method::GET, "/assignments/events", None, None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .get(format!(
            "{}/assignments/events?access_token={admin}",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut events = Events {
        response,
        buffer: String::new(),
    };

    let payment = app.pay_for(&customer, &listing, window()).await;
    let assigned = wait_for_event(&mut events, |t| {
        t["payment_id"] == payment.as_str() && t["status"] == "assigned"
    })
    .await;
    assert!(
        assigned.get("explanation").is_none_or(Value::is_null),
        "{assigned}"
    );
    let tour = assigned["id"].as_str().unwrap().to_owned();
    app.drive(&realtor, &tour, &["accept"]).await;
    wait_for_event(&mut events, |t| {
        t["id"] == tour.as_str() && t["status"] == "accepted"
    })
    .await;

    // The stats rows carry each cell's outline, around the listing.
    let (status, cells) = app
        .call(
            Method::GET,
            "/assignments/stats?resolution=7",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cells}");
    let row = &cells[0];
    assert_eq!(row["assigned"], 1, "{cells}");
    let boundary = row["boundary"].as_array().unwrap();
    assert!(boundary.len() == 6 || boundary.len() == 5, "{row}");
    let listing_at = engine::Location::new(38.72, -9.14).unwrap();
    for vertex in boundary {
        let v = engine::Location::new(vertex[0].as_f64().unwrap(), vertex[1].as_f64().unwrap())
            .unwrap();
        // A resolution-7 cell is ~1.2 km across its edge: every vertex is near the listing.
        assert!(engine::geo::distance_km(&listing_at, &v) < 3.0, "{row}");
    }
    assert_eq!(
        row["cell"].as_str().unwrap(),
        listing_at.cell(h3o::Resolution::Seven).to_string()
    );
    app.shutdown().await;
}

fn admin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../admin")
}

/// The page in Chromium (`admin/tests/dashboard.mjs`, playwright-core): log in, map, table,
/// explanation, filter, and a tour appearing and changing state live after a payment. Needs
/// `npm ci` in `admin/` and Debian's `chromium` (`.ci/run` installs both). The screenshot is
/// kept at `admin/test-results/dashboard.png`.
#[tokio::test]
async fn the_dashboard_in_chromium() {
    let admin = admin_dir();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install chromium` (as .ci/run does) or set CHROMIUM"
    );
    assert!(
        admin.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in admin/ (as .ci/run does)"
    );
    let app = spawn_app().await;
    let (realtor_id, realtor) = app.register("realtor").await;
    app.set_realtor(&realtor, 38.70, -9.10).await;
    let (_, provider) = app.register("provider").await;
    let near = app.published_listing(&provider, 38.72, -9.14).await;
    // 300 km from the only realtor (radius 50 km): nobody can take it.
    let far = app.published_listing(&provider, 41.15, -8.61).await;
    let (_, customer) = app.register("customer").await;
    let payment = app.pay_for(&customer, &near, window()).await;
    let assigned = app.settled_tour(&customer, &payment).await;
    assert_eq!(assigned["status"], "assigned", "{assigned}");
    let payment = app.pay_for(&customer, &far, window()).await;
    let unassignable = app.settled_tour(&customer, &payment).await;
    assert_eq!(unassignable["status"], "unassignable", "{unassignable}");
    // The browser test pays this one and watches what follows.
    let (_, live_customer) = app.register("customer").await;
    let pending_payment = app.checkout(&live_customer, &near, window()).await;

    let results = admin.join("test-results");
    std::fs::create_dir_all(&results).unwrap();
    let screenshot = results.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = tokio::process::Command::new("node")
        .arg("tests/dashboard.mjs")
        .current_dir(&admin)
        .env("BASE", &app.base)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ASSIGNED_TOUR", assigned["id"].as_str().unwrap())
        .env("ASSIGNED_REALTOR", realtor_id.to_string())
        .env("UNASSIGNABLE_TOUR", unassignable["id"].as_str().unwrap())
        .env("CUSTOMER_TOKEN", &live_customer)
        .env("PAYMENT_ID", &pending_payment)
        .env("REALTOR_TOKEN", &realtor)
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), output)
        .await
        .expect("the browser test finished within 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("ok - the accept showed up live"),
        "{stdout}"
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    app.shutdown().await;
}
