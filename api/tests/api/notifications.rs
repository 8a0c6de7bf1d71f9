//! The notification worker end to end: every kind of email is written once, to the right
//! person, as an `.eml` file in the data dir's `mail/` folder, and `/notifications` shows it
//! sent; password reset by email (single use, expiry, no account enumeration).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, window, App};

/// Every notification of `/notifications` (all pages are one: fewer than 500 here).
async fn notifications(app: &App, admin: &str, query: &str) -> Vec<Value> {
    let (status, page) = app
        .call(
            Method::GET,
            &format!("/notifications?limit=500{query}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// `kind -> recipient -> count` of the sent notifications other than reminders (those depend
/// on the clock: a tour starting tomorrow may or may not be 24 h away).
fn sent_by_kind(items: &[Value]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for n in items {
        let kind = n["kind"].as_str().unwrap();
        if n["status"] == "sent" && !kind.starts_with("reminder_") {
            *out.entry(kind.to_owned())
                .or_default()
                .entry(n["recipient_email"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    out
}

/// Waits (30 s at most) until the sent notifications are `expected`.
async fn await_sent(
    app: &App,
    admin: &str,
    expected: &BTreeMap<String, BTreeMap<String, usize>>,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = notifications(app, admin, "").await;
        if &sent_by_kind(&items) == expected {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "sent {:#?}\nwant {expected:#?}",
            sent_by_kind(&items)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tour's status once it is `status` (30 s at most).
async fn await_status(app: &App, token: &str, tour: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = app
            .call(Method::GET, &format!("/tours/{tour}"), Some(token), None)
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        if body["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "never {status}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An `.eml` file as text, quoted-printable soft breaks and `=3D` undone.
fn read_eml(dir: &Path, id: &str) -> String {
    let raw = std::fs::read_to_string(dir.join(format!("{id}.eml")))
        .unwrap_or_else(|e| panic!("{id}.eml: {e}"));
    raw.replace("=\r\n", "").replace("=3D", "=")
}

fn tally(entries: &[(&str, &str, usize)]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (kind, to, n) in entries {
        *out.entry((*kind).to_owned())
            .or_default()
            .entry((*to).to_owned())
            .or_default() += n;
    }
    out
}

#[tokio::test]
async fn every_notification_kind_is_mailed_once_to_the_right_person() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (c, r, p) = ("cora@example.com", "rui@example.com", "paula@example.com");
    let (_, customer) = app.register_email(c, "customer").await;
    let (_, realtor) = app.register_email(r, "realtor").await;
    let (_, provider) = app.register_email(p, "provider").await;
    let listing = app.published_listing(&provider, 38.72, -9.14).await;
    app.set_realtor(&realtor, 38.72, -9.14).await;

    // A: assigned, accepted, worked, reviewed.
    let payment = app.pay_for(&customer, &listing, window()).await;
    let a = app.settled_tour(&customer, &payment).await;
    assert_eq!(a["status"], "assigned", "{a}");
    let a = a["id"].as_str().unwrap().to_owned();
    app.drive(&realtor, &a, &["accept", "start", "complete"])
        .await;
    let (status, review) = app
        .call(
            Method::POST,
            &format!("/tours/{a}/review"),
            Some(&customer),
            Some(json!({"rating": 5, "comment": "Knew every corner."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");

    // B: assigned, moved (matched again), cancelled.
    let payment = app.pay_for(&customer, &listing, window()).await;
    let b = app.settled_tour(&customer, &payment).await;
    let b = b["id"].as_str().unwrap().to_owned();
    let later = json!({
        "start": (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339(),
        "end": (chrono::Utc::now() + chrono::Duration::days(3) + chrono::Duration::hours(4)).to_rfc3339(),
    });
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/tours/{b}"),
            Some(&customer),
            Some(json!({"window": later})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    await_status(&app, &customer, &b, "assigned").await;
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/tours/{b}"),
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // C: declined by the only realtor, so unassignable.
    let payment = app.pay_for(&customer, &listing, window()).await;
    let tour_c = app.settled_tour(&customer, &payment).await;
    let tour_c = tour_c["id"].as_str().unwrap().to_owned();
    app.drive(&realtor, &tour_c, &["decline"]).await;
    await_status(&app, &customer, &tour_c, "unassignable").await;

    let expected = tally(&[
        ("listing_published", p, 1),
        ("tour_assigned", c, 4),
        ("tour_assigned", r, 4),
        ("tour_accepted", c, 1),
        ("review_received", r, 1),
        ("tour_rescheduled", c, 1),
        ("tour_rescheduled", r, 1),
        ("tour_cancelled", c, 1),
        ("tour_cancelled", r, 1),
        ("tour_declined", c, 1),
        ("tour_unassignable", c, 1),
    ]);
    let items = await_sent(&app, &admin, &expected).await;
    assert!(items.iter().all(|n| n["status"] != "failed"), "{items:#?}");

    // One file per sent notification, addressed and titled as the row says.
    let mail = app.data_dir.join("mail");
    let sent: Vec<&Value> = items.iter().filter(|n| n["status"] == "sent").collect();
    for n in &sent {
        let eml = read_eml(&mail, n["id"].as_str().unwrap());
        let to = n["recipient_email"].as_str().unwrap();
        assert!(eml.contains(&format!("To: {to}")), "{eml}");
        assert!(
            eml.contains(&format!("Subject: {}", n["subject"].as_str().unwrap())),
            "{eml}"
        );
        if let Some(tour) = n["tour_id"].as_str() {
            assert!(eml.contains(tour), "{eml}");
        }
    }
    let files = std::fs::read_dir(&mail)
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "eml")
        })
        .count();
    assert_eq!(files, sent.len());
    let review_mail = sent
        .iter()
        .find(|n| n["kind"] == "review_received")
        .unwrap();
    assert!(read_eml(&mail, review_mail["id"].as_str().unwrap()).contains("Knew every corner."));

    // Filters, and only admins read them.
    let cancelled = notifications(&app, &admin, &format!("&tour_id={b}&kind=tour_cancelled")).await;
    assert_eq!(cancelled.len(), 2);
    let (status, body) = app
        .call(Method::GET, "/notifications", Some(&customer), None)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::GET,
            "/notifications?status=lost",
            Some(&admin),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    app.shutdown().await;
}

/// The token of the newest `password_reset` email to `email`.
async fn reset_token(app: &App, admin: &str, email: &str, seen: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut items = notifications(app, admin, "&kind=password_reset&status=sent").await;
        items.retain(|n| n["recipient_email"] == email);
        if items.len() > seen {
            // Newest first.
            let eml = read_eml(&app.data_dir.join("mail"), items[0]["id"].as_str().unwrap());
            let at = eml.find("token=").expect("a link") + "token=".len();
            return eml[at..at + 64].to_owned();
        }
        assert!(Instant::now() < deadline, "no reset email: {items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_password_reset_link_works_once_and_only_in_time() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let email = "forgetful@example.com";
    app.register_email(email, "customer").await;

    // The same answer for an account and for nobody.
    let ask = |who: &'static str| {
        app.call(
            Method::POST,
            "/iam/password-reset",
            None,
            Some(json!({"email": who})),
        )
    };
    let (known_status, known) = ask(email).await;
    let (unknown_status, unknown) = ask("nobody@example.com").await;
    assert_eq!(known_status, StatusCode::ACCEPTED);
    assert_eq!((unknown_status, &unknown), (known_status, &known));
    let token = reset_token(&app, &admin, email, 0).await;
    let nobody = notifications(&app, &admin, "&kind=password_reset").await;
    assert!(
        nobody.iter().all(|n| n["recipient_email"] == email),
        "{nobody:?}"
    );

    let confirm = |token: String, password: &'static str| {
        app.call(
            Method::POST,
            "/iam/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": password})),
        )
    };
    let (status, body) = confirm(token.clone(), "short").await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = confirm("0".repeat(64), "a-new-password").await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_reset_token");
    let (status, body) = confirm(token.clone(), "a-new-password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.login(email, "a-new-password").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/iam/login",
            None,
            Some(json!({"email": email, "password": "password123"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Single use.
    let (status, body) = confirm(token, "yet-another-one").await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    // Expired: a fresh link whose 30 minutes have passed.
    let (status, _) = ask(email).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = reset_token(&app, &admin, email, 1).await;
    let db = Database::connect(&app.db_url).await.unwrap();
    db.execute_unprepared(
        "UPDATE password_reset_tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE used_at IS NULL",
    )
    .await
    .unwrap();
    let (status, body) = confirm(token, "too-late-password").await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    app.login(email, "a-new-password").await;

    // The link is only in the email: the row keeps no usable token.
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT body FROM notifications WHERE kind = 'password_reset' AND status = 'sent'",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let body: String = row.try_get("", "body").unwrap();
        assert!(!body.contains("token="), "{body}");
    }
    app.shutdown().await;
}
