//! Reviews through HTTP: a customer reviews the realtor of their own completed tour once; the
//! public profile shows the mean of visible reviews; admins hide reviews (CONTRACT 3, 4).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_with, window, App, Db};

async fn review(app: &App, token: Option<&str>, tour: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("/tours/{tour}/review"),
        token,
        Some(body),
    )
    .await
}

async fn reviews(db: Db) {
    let app = spawn_with(db, &[]).await;
    let (_, provider) = app.register("provider").await;
    let (realtor_id, realtor) = app.register("realtor").await;
    let (customer_id, customer) = app.register("customer").await;
    let (_, other) = app.register("customer").await;
    let admin = app.admin().await;
    app.set_realtor(&realtor, 38.73, -9.14).await;
    let listing = app.published_listing(&provider, 38.7223, -9.1393).await;

    // Before any review: no rating; the home is private to the realtor and admins.
    let profile_path = format!("/realtors/{realtor_id}");
    let (status, profile) = app.call(Method::GET, &profile_path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["rating"], Value::Null);
    assert_eq!(profile["review_count"], 0);
    assert_eq!(profile["status"], "available");
    assert_eq!(profile["name"], "realtor");
    assert!(profile.get("home").is_none(), "{profile}");
    let (_, own) = app
        .call(Method::GET, &profile_path, Some(&realtor), None)
        .await;
    assert!((own["home"]["lat"].as_f64().unwrap() - 38.73).abs() < 1e-9);

    let done = app.completed_tour(&customer, &listing, &admin).await;
    let payment = app.pay_for(&customer, &listing, window()).await;
    let open = app.settled_tour(&customer, &payment).await;
    let open = open["id"].as_str().unwrap().to_owned();

    // Who may not, and what is not reviewable.
    let good = json!({"rating": 5, "comment": "Knew every corner"});
    let (status, body) = review(&app, None, &done, good.clone()).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    for token in [&realtor, &provider, &admin] {
        let (status, body) = review(&app, Some(token), &done, good.clone()).await;
        assert_error(status, &body, StatusCode::FORBIDDEN);
    }
    let (status, body) = review(&app, Some(&other), &done, good.clone()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = review(
        &app,
        Some(&customer),
        &Uuid::new_v4().to_string(),
        good.clone(),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = review(&app, Some(&customer), &open, good.clone()).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "tour_not_completed");
    for bad in [
        json!({"rating": 0, "comment": "x"}),
        json!({"rating": 6, "comment": "x"}),
        json!({"rating": -3, "comment": "x"}),
        json!({"rating": 4, "comment": "x".repeat(2001)}),
    ] {
        let (status, body) = review(&app, Some(&customer), &done, bad).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }

    // The customer reviews once; the second attempt is a conflict.
    let (status, first) = review(&app, Some(&customer), &done, good.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["rating"], 5);
    assert_eq!(first["tour_id"], done.as_str());
    assert_eq!(first["realtor_id"], realtor_id.to_string());
    let (status, body) = review(&app, Some(&customer), &done, json!({"rating": 1})).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "already_reviewed");

    // A second completed tour, rated 2 (the comment may be left out): mean 3.5 of 2.
    let done2 = app.completed_tour(&customer, &listing, &admin).await;
    let (status, second) = review(&app, Some(&customer), &done2, json!({"rating": 2})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["comment"], "");
    let (_, profile) = app.call(Method::GET, &profile_path, None, None).await;
    assert_eq!(profile["review_count"], 2, "{profile}");
    assert!((profile["rating"].as_f64().unwrap() - 3.5).abs() < 1e-9);

    // The public list: newest first, paginated, no customer ids.
    let list_path = format!("/realtors/{realtor_id}/reviews");
    let (status, page) = app
        .call(Method::GET, &format!("{list_path}?limit=1"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["id"], second["id"], "{page}");
    assert!(page["items"][0].get("customer_id").is_none());
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = app
        .call(
            Method::GET,
            &format!("{list_path}?limit=1&cursor={cursor}"),
            None,
            None,
        )
        .await;
    assert_eq!(page2["items"][0]["id"], first["id"], "{page2}");
    assert_eq!(page2["next_cursor"], Value::Null);

    // Moderation: admins only; hidden reviews leave the mean and the list.
    let hide = |id: &Value, token: Option<&str>, query: &str, body: Option<Value>| {
        let path = format!("/reviews/{}{query}", id.as_str().unwrap());
        let token = token.map(str::to_owned);
        let app = &app;
        async move {
            app.call(Method::DELETE, &path, token.as_deref(), body)
                .await
        }
    };
    let (status, _) = hide(&second["id"], None, "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for token in [&customer, &realtor, &provider] {
        let (status, body) = hide(&second["id"], Some(token), "", None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN);
    }
    let (status, body) = hide(
        &second["id"],
        Some(&admin),
        "",
        Some(json!({"reason": "r".repeat(501)})),
    )
    .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = hide(&second["id"], Some(&admin), "?reason=off-topic", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, profile) = app.call(Method::GET, &profile_path, None, None).await;
    assert_eq!(profile["review_count"], 1, "{profile}");
    assert!((profile["rating"].as_f64().unwrap() - 5.0).abs() < 1e-9);
    let (_, page) = app.call(Method::GET, &list_path, None, None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["id"], first["id"]);
    // Hiding again is fine; the other one with a JSON reason.
    let (status, _) = hide(&second["id"], Some(&admin), "", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = hide(
        &first["id"],
        Some(&admin),
        "",
        Some(json!({"reason": "personal data"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, profile) = app.call(Method::GET, &profile_path, None, None).await;
    assert_eq!(
        (profile["rating"].clone(), profile["review_count"].clone()),
        (Value::Null, json!(0)),
        "{profile}"
    );
    // A hidden review still counts as the tour's one review.
    let (status, _) = review(&app, Some(&customer), &done, good).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Unknown ids and non-realtors are 404.
    let (status, body) = hide(&json!(Uuid::new_v4().to_string()), Some(&admin), "", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    for path in [
        format!("/realtors/{customer_id}"),
        format!("/realtors/{}", Uuid::new_v4()),
        format!("/realtors/{customer_id}/reviews"),
        "/realtors/not-a-uuid".to_owned(),
    ] {
        let (status, body) = app.call(Method::GET, &path, None, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn reviews_and_moderation_on_sqlite() {
    reviews(Db::Sqlite).await;
}

#[tokio::test]
async fn reviews_and_moderation_on_postgres() {
    reviews(Db::Postgres).await;
}
