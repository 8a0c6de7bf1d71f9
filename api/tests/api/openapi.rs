//! `/openapi.json` tells the truth: real answers of a booking, checked against the schemas the
//! document gives for their endpoint and status (field names, required fields, types).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, window, App};

/// Why `value` does not match `schema` (empty when it does).
fn mismatches(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return mismatches(doc, &doc["components"]["schemas"][name], value, at, out);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let fits = options.iter().any(|o| {
                let mut errors = Vec::new();
                mismatches(doc, o, value, at, &mut errors);
                errors.is_empty()
            });
            if !fits {
                out.push(format!("{at}: {value} matches no {key} option"));
            }
            return;
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            mismatches(doc, s, value, at, out);
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let type_ok = types.is_empty()
        || types.contains(&kind)
        || (kind == "integer" && types.contains(&"number"));
    if !type_ok {
        out.push(format!("{at}: {value} is {kind}, schema says {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !value.is_null() && !allowed.contains(value) {
            out.push(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    match value {
        Value::Object(fields) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (name, v) in fields {
                    match properties.get(name) {
                        Some(s) => mismatches(doc, s, v, &format!("{at}.{name}"), out),
                        None => out.push(format!("{at}.{name}: not in the schema")),
                    }
                }
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                if !fields.contains_key(name) {
                    out.push(format!("{at}.{name}: required but missing"));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                mismatches(doc, &schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

struct Checker {
    doc: Value,
    checked: Vec<String>,
    errors: Vec<String>,
}

impl Checker {
    /// Calls an endpoint and checks its answer against the document (`template` is the path
    /// as the document writes it).
    async fn call(
        &mut self,
        app: &App,
        method: Method,
        path: &str,
        template: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = app.call(method.clone(), path, token, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        let m = method.as_str().to_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{m} {template} is not documented");
        let schema = &op["responses"][status.as_str()]["content"]["application/json"]["schema"];
        if status == StatusCode::NO_CONTENT {
            return answer;
        }
        assert!(schema.is_object(), "{m} {template} {status}: no schema");
        mismatches(
            &self.doc,
            schema,
            &answer,
            &format!("{m} {template}"),
            &mut self.errors,
        );
        self.checked.push(format!("{m} {template}"));
        answer
    }

    async fn error(&mut self, app: &App, path: &str) {
        let (status, answer) = app.call(Method::GET, path, None, None).await;
        assert!(status.is_client_error());
        let schema = &self.doc["paths"]["/iam/me"]["get"]["responses"]["default"]["content"]
            ["application/json"]["schema"];
        mismatches(&self.doc, schema, &answer, "error", &mut self.errors);
    }
}

#[tokio::test]
async fn answers_match_the_documented_schemas() {
    let app = spawn_app().await;
    let (_, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut c = Checker {
        doc,
        checked: Vec::new(),
        errors: Vec::new(),
    };
    let (_, provider) = app.register("provider").await;
    let (realtor_id, realtor) = app.register("realtor").await;
    let (_, customer) = app.register("customer").await;
    let admin = app.admin().await;
    let a = &app;

    c.call(a, Method::GET, "/healthz", "/healthz", None, None)
        .await;
    c.call(a, Method::GET, "/readyz", "/readyz", None, None)
        .await;
    let email = format!("doc-{}@example.com", uuid::Uuid::new_v4().simple());
    c.call(
        a,
        Method::POST,
        "/iam/register",
        "/iam/register",
        None,
        Some(json!({"email": email, "password": "password123", "name": "Doc", "role": "customer"})),
    )
    .await;
    c.call(
        a,
        Method::POST,
        "/iam/login",
        "/iam/login",
        None,
        Some(json!({"email": email, "password": "password123"})),
    )
    .await;
    c.call(a, Method::GET, "/iam/me", "/iam/me", Some(&customer), None)
        .await;
    let hours: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"}))
        .collect();
    c.call(
        a,
        Method::PUT,
        "/realtors/me",
        "/realtors/me",
        Some(&realtor),
        Some(
            json!({"home": {"lat": 38.73, "lng": -9.14}, "service_radius_km": 50.0,
                    "time_zone": "Europe/Lisbon", "working_hours": hours}),
        ),
    )
    .await;
    c.call(
        a,
        Method::PATCH,
        "/realtors/me/status",
        "/realtors/me/status",
        Some(&realtor),
        Some(json!({"status": "available"})),
    )
    .await;
    let listing = c.call(a, Method::POST, "/listings", "/listings", Some(&provider),
        Some(json!({"title": "Flat", "address": "Rua 1", "location": {"lat": 38.7223, "lng": -9.1393}, "price_cents": 2500}))).await;
    let l = listing["id"].as_str().unwrap().to_owned();
    let lp = format!("/listings/{l}");
    c.call(
        a,
        Method::POST,
        &format!("{lp}/publish"),
        "/listings/{id}/publish",
        Some(&provider),
        None,
    )
    .await;
    c.call(
        a,
        Method::PATCH,
        &lp,
        "/listings/{id}",
        Some(&provider),
        Some(json!({"price_cents": 3000})),
    )
    .await;
    c.call(a, Method::GET, &lp, "/listings/{id}", None, None)
        .await;
    c.call(
        a,
        Method::GET,
        "/listings?near=38.72,-9.14&radius_km=5",
        "/listings",
        None,
        None,
    )
    .await;
    c.call(
        a,
        Method::POST,
        "/cart/items",
        "/cart/items",
        Some(&customer),
        Some(json!({"listing_id": l})),
    )
    .await;
    c.call(a, Method::GET, "/cart", "/cart", Some(&customer), None)
        .await;
    let payment = c
        .call(
            a,
            Method::POST,
            "/cart/checkout",
            "/cart/checkout",
            Some(&customer),
            Some(json!({"window": window()})),
        )
        .await;
    c.call(
        a,
        Method::POST,
        "/payments",
        "/payments",
        Some(&customer),
        Some(json!({"payment_id": payment["payment_id"], "card_token": "tok_visa"})),
    )
    .await;
    let tour = app
        .settled_tour(&customer, payment["payment_id"].as_str().unwrap())
        .await;
    let t = tour["id"].as_str().unwrap().to_owned();
    let tp = format!("/tours/{t}");
    c.call(a, Method::GET, "/tours", "/tours", Some(&customer), None)
        .await;
    c.call(a, Method::GET, &tp, "/tours/{id}", Some(&customer), None)
        .await;
    c.call(
        a,
        Method::GET,
        "/assignments",
        "/assignments",
        Some(&admin),
        None,
    )
    .await;
    c.call(
        a,
        Method::GET,
        &format!("/assignments/{t}/explain"),
        "/assignments/{tour_id}/explain",
        Some(&admin),
        None,
    )
    .await;
    c.call(
        a,
        Method::GET,
        "/assignments/stats",
        "/assignments/stats",
        Some(&admin),
        None,
    )
    .await;
    let w = window();
    let avail = format!(
        "/availability?lat=38.72&lng=-9.14&radius_km=30&start={}&end={}",
        w["start"].as_str().unwrap().replace('+', "%2B"),
        w["end"].as_str().unwrap().replace('+', "%2B")
    );
    c.call(a, Method::GET, &avail, "/availability", Some(&admin), None)
        .await;
    c.call(
        a,
        Method::POST,
        &format!("{tp}/accept"),
        "/tours/{id}/accept",
        Some(&realtor),
        None,
    )
    .await;
    c.call(
        a,
        Method::POST,
        &format!("{tp}/start"),
        "/tours/{id}/start",
        Some(&realtor),
        None,
    )
    .await;
    c.call(
        a,
        Method::POST,
        &format!("{tp}/complete"),
        "/tours/{id}/complete",
        Some(&realtor),
        None,
    )
    .await;
    let review = c
        .call(
            a,
            Method::POST,
            &format!("{tp}/review"),
            "/tours/{id}/review",
            Some(&customer),
            Some(json!({"rating": 4, "comment": "Good"})),
        )
        .await;
    c.call(
        a,
        Method::GET,
        &format!("/realtors/{realtor_id}"),
        "/realtors/{id}",
        None,
        None,
    )
    .await;
    c.call(
        a,
        Method::GET,
        &format!("/realtors/{realtor_id}"),
        "/realtors/{id}",
        Some(&realtor),
        None,
    )
    .await;
    c.call(
        a,
        Method::GET,
        &format!("/realtors/{realtor_id}/reviews"),
        "/realtors/{id}/reviews",
        None,
        None,
    )
    .await;
    c.call(
        a,
        Method::DELETE,
        &format!("/reviews/{}", review["id"].as_str().unwrap()),
        "/reviews/{id}",
        Some(&admin),
        None,
    )
    .await;
    // A second tour, rescheduled and cancelled.
    let p2 = app.pay_for(&customer, &l, window()).await;
    let t2 = app.settled_tour(&customer, &p2).await;
    let t2p = format!("/tours/{}", t2["id"].as_str().unwrap());
    c.call(
        a,
        Method::PATCH,
        &t2p,
        "/tours/{id}",
        Some(&customer),
        Some(json!({"window": window()})),
    )
    .await;
    c.call(
        a,
        Method::DELETE,
        &t2p,
        "/tours/{id}",
        Some(&customer),
        None,
    )
    .await;
    c.call(
        a,
        Method::POST,
        &format!("{lp}/unpublish"),
        "/listings/{id}/unpublish",
        Some(&provider),
        None,
    )
    .await;
    c.error(a, "/iam/me").await;
    c.error(a, "/tours/nope").await;

    assert!(c.errors.is_empty(), "{}", c.errors.join("\n"));
    assert!(c.checked.len() >= 30, "{:?}", c.checked);
}
