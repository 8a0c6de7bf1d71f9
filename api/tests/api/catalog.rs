//! Categories and listing search (issue #12), on SQLite (FTS5) and PostgreSQL (full text):
//! every search is checked against a brute-force answer computed here from what was created.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_with, App, Db};

const TITLES: [&str; 6] = [
    "Sunny flat",
    "Quiet house",
    "River loft",
    "Old townhouse",
    "Garden studio",
    "Roof penthouse",
];
const STREETS: [&str; 5] = [
    "Rua Augusta",
    "Avenida da Liberdade",
    "Rua Garrett",
    "Largo do Carmo",
    "Travessa Rosa",
];

/// A listing as the test made it.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    title: String,
    address: String,
    lat: f64,
    lng: f64,
    category: Option<String>,
    published: bool,
}

fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let (dp, dl) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

/// Every word of `q` starts a word of the title or address.
fn matches(m: &Made, q: &str) -> bool {
    let text = format!("{} {}", m.title, m.address).to_lowercase();
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
    q.to_lowercase()
        .split_whitespace()
        .all(|w| words.iter().any(|t| t.starts_with(w)))
}

async fn search(app: &App, token: Option<&str>, query: &str) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    let mut cache = String::new();
    loop {
        let mut req = app
            .client
            .get(format!("{}/listings?limit=7&{query}{cursor}", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{query}");
        if cache.is_empty() {
            cache = resp.headers()["x-cache"].to_str().unwrap().to_owned();
        }
        let page: Value = resp.json().await.unwrap();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return (ids, cache),
        }
    }
}

async fn category(app: &App, admin: &str, name: &str) -> String {
    let (status, body) = app
        .call(
            Method::POST,
            "/categories",
            Some(admin),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], name);
    body["id"].as_str().unwrap().to_owned()
}

async fn listing(app: &App, token: &str, made: &Made) -> String {
    let mut body = json!({"title": made.title, "address": made.address,
                          "location": {"lat": made.lat, "lng": made.lng}, "price_cents": 1000});
    if let Some(c) = &made.category {
        body["category_id"] = json!(c);
    }
    let (status, created) = app
        .call(Method::POST, "/listings", Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["category_id"], json!(made.category));
    let id = created["id"].as_str().unwrap().to_owned();
    if made.published {
        let path = format!("/listings/{id}/publish");
        assert_eq!(
            app.call(Method::POST, &path, Some(token), None).await.0,
            StatusCode::OK
        );
    }
    id
}

async fn catalog(db: Db) {
    let app = spawn_with(db, &[]).await;
    let admin = app.admin().await;
    let (_, provider) = app.register("provider").await;
    let (_, customer) = app.register("customer").await;

    // Categories: admins manage them, names are unique without regard to case.
    let flats = category(&app, &admin, "Flats").await;
    let houses = category(&app, &admin, "Houses").await;
    let old = category(&app, &admin, "Old stock").await;
    let (s, b) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin),
            Some(json!({"name": "flats"})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);
    let (s, b) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin),
            Some(json!({"name": "  "})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = app
        .call(
            Method::POST,
            "/categories",
            Some(&provider),
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    let (s, b) = app
        .call(
            Method::POST,
            "/categories",
            None,
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/categories/{houses}"),
            Some(&admin),
            Some(json!({"name": "Homes"})),
        )
        .await;
    assert_eq!((s, &b["name"]), (StatusCode::OK, &json!("Homes")), "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/categories/{old}/archive"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, &b["archived"]), (StatusCode::OK, &json!(true)), "{b}");
    let unknown = uuid::Uuid::new_v4();
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/categories/{unknown}/archive"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (_, listed) = app.call(Method::GET, "/categories", None, None).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Flats", "Homes"]);
    let (_, all) = app
        .call(
            Method::GET,
            "/categories?include_archived=true",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let (_, not_admin) = app
        .call(
            Method::GET,
            "/categories?include_archived=true",
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(not_admin["items"].as_array().unwrap().len(), 2);

    // An archived or unknown category takes no listing.
    for bad in [old.clone(), unknown.to_string()] {
        let body = json!({"title": "X", "address": "Y", "location": {"lat": 38.7, "lng": -9.1},
                          "price_cents": 1, "category_id": bad});
        let (s, b) = app
            .call(Method::POST, "/listings", Some(&provider), Some(body))
            .await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    }

    // Listings around Lisbon.
    let mut rng = StdRng::seed_from_u64(11);
    let mut made = Vec::new();
    for i in 0..40 {
        let mut m = Made {
            id: String::new(),
            title: format!("{} {i}", TITLES[rng.random_range(0..TITLES.len())]),
            address: format!(
                "{} {}",
                STREETS[rng.random_range(0..STREETS.len())],
                rng.random_range(1..200)
            ),
            lat: 38.72 + rng.random_range(-0.06..0.06),
            lng: -9.14 + rng.random_range(-0.06..0.06),
            category: [Some(flats.clone()), Some(houses.clone()), None][i % 3].clone(),
            published: i % 5 != 0,
        };
        m.id = listing(&app, &provider, &m).await;
        made.push(m);
    }
    let centre = (38.72, -9.14);
    let public = |m: &&Made| m.published;
    let expect = |filter: &dyn Fn(&Made) -> bool, by_distance: bool| -> Vec<String> {
        let mut hits: Vec<&Made> = made.iter().filter(public).filter(|m| filter(m)).collect();
        if by_distance {
            hits.sort_by(|a, b| km(centre, (a.lat, a.lng)).total_cmp(&km(centre, (b.lat, b.lng))));
        } else {
            hits.sort_by(|a, b| a.id.cmp(&b.id));
        }
        hits.into_iter().map(|m| m.id.clone()).collect()
    };

    // Place: nearest first, exactly the listings within the radius, over several pages.
    let near = "near=38.72,-9.14&radius_km=4";
    let (got, _) = search(&app, None, near).await;
    let want = expect(&|m| km(centre, (m.lat, m.lng)) <= 4.0, true);
    assert!(want.len() > 7, "more than one page: {}", want.len());
    assert_eq!(got, want);
    // Category and place together.
    let (got, _) = search(&app, None, &format!("{near}&category={flats}")).await;
    let want = expect(
        &|m| km(centre, (m.lat, m.lng)) <= 4.0 && m.category.as_deref() == Some(flats.as_str()),
        true,
    );
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // Text: every word must start a word of the title or address (any order, any case).
    for q in [
        "rua",
        "RUA aug",
        "garden",
        "liberdade avenida",
        "loft rua",
        "tower",
    ] {
        let (got, _) = search(&app, None, &format!("q={}", q.replace(' ', "+"))).await;
        let got: BTreeSet<String> = got.into_iter().collect();
        let want: BTreeSet<String> = expect(&|m| matches(m, q), false).into_iter().collect();
        assert_eq!(got, want, "q={q}");
    }
    // Text, category and place; in creation order when asked.
    let query = format!("q=rua&category={houses}&{near}&sort=created");
    let (got, _) = search(&app, None, &query).await;
    let want = expect(
        &|m| {
            matches(m, "rua")
                && m.category.as_deref() == Some(houses.as_str())
                && km(centre, (m.lat, m.lng)) <= 4.0
        },
        false,
    );
    assert_eq!(got, want);
    // The owner also finds their drafts; anonymous callers do not.
    let (mine, _) = search(&app, Some(&provider), "q=rua").await;
    let drafts = made
        .iter()
        .filter(|m| !m.published && matches(m, "rua"))
        .count();
    assert!(drafts > 0);
    assert_eq!(
        mine.len(),
        expect(&|m| matches(m, "rua"), false).len() + drafts
    );

    // Answers are cached until a listing changes: a new word is found at once after its change.
    let (first, cache) = search(&app, None, "q=zanzibar").await;
    assert_eq!((first.len(), cache.as_str()), (0, "miss"));
    let (_, cache) = search(&app, None, "q=zanzibar").await;
    assert_eq!(cache, "hit");
    let renamed = &made[1];
    assert!(renamed.published);
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/listings/{}", renamed.id),
            Some(&provider),
            Some(json!({"title": "Zanzibar suite"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (found, cache) = search(&app, None, "q=zanzibar").await;
    assert_eq!((found, cache.as_str()), (vec![renamed.id.clone()], "miss"));
    // The old title's words no longer find it (the text index follows updates).
    let old_word = renamed.title.split(' ').next().unwrap().to_lowercase();
    let (found, _) = search(
        &app,
        None,
        &format!("q={old_word}+{}", renamed.title.split(' ').nth(1).unwrap()),
    )
    .await;
    assert!(!found.contains(&renamed.id));
    // Deleted: gone.
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/listings/{}", renamed.id),
            Some(&provider),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (found, _) = search(&app, None, "q=zanzibar").await;
    assert!(found.is_empty());

    // Bad searches.
    for (query, want) in [
        ("sort=distance", StatusCode::UNPROCESSABLE_ENTITY),
        ("sort=relevance", StatusCode::UNPROCESSABLE_ENTITY),
        ("sort=cheapest&q=rua", StatusCode::UNPROCESSABLE_ENTITY),
        ("q=%21%21%21", StatusCode::UNPROCESSABLE_ENTITY),
        ("category=not-a-uuid", StatusCode::BAD_REQUEST),
        ("near=91,0", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (s, b) = app
            .call(Method::GET, &format!("/listings?{query}"), None, None)
            .await;
        assert_error(s, &b, want);
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_on_sqlite() {
    catalog(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_on_postgres() {
    catalog(Db::Postgres).await;
}
