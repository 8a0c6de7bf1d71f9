//! Media of listings and realtors (issue #12) through the real binary, on both stores: the
//! local folder (default) and an S3-protocol server on loopback (`s3s-fs`, started here; CI
//! installs it). Round trips, cache headers, thumbnails, permissions, and refused uploads that
//! leave nothing behind.

use std::path::{Path, PathBuf};

use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// `tourwise serve` on a fresh SQLite file in `dir` with `--media-url media_url`.
fn serve(dir: &Path, media_url: &str, env: &[(&str, String)]) -> common::Serve {
    let db = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("RUST_LOG", "warn"));
    let args = ["--database-url", &db, "--media-url", media_url];
    let admin = ["--admin-email", ADMIN.0, "--admin-password", ADMIN.1];
    common::spawn(
        &[&args[..], &admin[..]].concat(),
        &vars,
        &dir.join("serve.log"),
    )
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image =
        image::RgbImage::from_fn(width, height, |x, _| image::Rgb([(x % 256) as u8, 90, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// An MP4 as far as its first box goes (uploads are checked by content, not decoded).
fn mp4() -> Vec<u8> {
    let mut bytes = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
    bytes.extend(std::iter::repeat_n(7u8, 4096));
    bytes
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn account(&self, email: &str, role: &str) -> String {
        let body = json!({"email": email, "password": "password1", "name": email, "role": role});
        let (s, b) = self
            .json(reqwest::Method::POST, "/iam/register", None, body)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        self.login(email, "password1").await
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let body = json!({"email": email, "password": password});
        let (s, b) = self
            .json(reqwest::Method::POST, "/iam/login", None, body)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["access_token"].as_str().unwrap().to_owned()
    }

    async fn upload(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let part = Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .multipart(Form::new().text("caption", "ignored").part("file", part));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(err) => panic!("{path}: {err}"),
        }
    }
}

async fn round_trip(media_url: &str, stored_in: &Path, env: &[(&str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), media_url, env);
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let post = reqwest::Method::POST;
    let provider = api.account("provider@example.com", "provider").await;
    let other = api.account("other@example.com", "provider").await;
    let customer = api.account("customer@example.com", "customer").await;
    let realtor = api.account("realtor@example.com", "realtor").await;
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let body = json!({"title": "Loft", "address": "Rua A 1", "location": {"lat": 38.7, "lng": -9.1}, "price_cents": 100});
    let (_, listing) = api
        .json(post.clone(), "/listings", Some(&provider), body)
        .await;
    let id = listing["id"].as_str().unwrap().to_owned();
    api.json(
        post.clone(),
        &format!("/listings/{id}/publish"),
        Some(&provider),
        json!({}),
    )
    .await;
    let media_path = format!("/listings/{id}/media");

    // An image: stored, read back byte for byte with its type, ETag and cache headers.
    let picture = png(800, 600);
    let (s, image) = api
        .upload(
            post.clone(),
            &media_path,
            Some(&provider),
            "house.png",
            "image/png",
            picture.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{image}");
    assert_eq!(
        (image["kind"].as_str(), image["content_type"].as_str()),
        (Some("image"), Some("image/png"))
    );
    assert_eq!(image["size_bytes"], json!(picture.len()));
    let url = image["url"].as_str().unwrap().to_owned();
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), picture);
    let again = api
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let thumb = reqwest::get(image["thumbnail_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let small = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240));
    // A video (admins may add to any listing); no thumbnail.
    let (s, video) = api
        .upload(
            post.clone(),
            &media_path,
            Some(&admin),
            "tour.mp4",
            "video/mp4",
            mp4(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{video}");
    assert_eq!(
        (video["kind"].as_str(), &video["thumbnail_url"]),
        (Some("video"), &Value::Null)
    );
    let (_, listed) = api
        .json(
            reqwest::Method::GET,
            &format!("/listings/{id}"),
            None,
            Value::Null,
        )
        .await;
    let urls: Vec<&str> = listed["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, [url.as_str(), video["url"].as_str().unwrap()]);
    let stored = files(stored_in).len();
    assert_eq!(stored, 3, "image, thumbnail, video: {:?}", files(stored_in));

    // Refused: anonymous, other roles and other owners, a disguised file, an over-size one;
    // none of them leaves anything in the store or the spool.
    let jpg = jpeg(64, 48);
    let (s, b) = api
        .upload(
            post.clone(),
            &media_path,
            None,
            "a.jpg",
            "image/jpeg",
            jpg.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    for token in [&other, &customer] {
        let (s, b) = api
            .upload(
                post.clone(),
                &media_path,
                Some(token),
                "a.jpg",
                "image/jpeg",
                jpg.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    }
    let (s, b) = api
        .json(
            post.clone(),
            &media_path,
            Some(&provider),
            json!({"file": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not multipart: {b}");
    let disguised = b"<html><script>alert(1)</script></html>".repeat(20);
    let (s, b) = api
        .upload(
            post.clone(),
            &media_path,
            Some(&provider),
            "cat.png",
            "image/png",
            disguised,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let mut huge = png(16, 16);
    huge.resize(10 * 1024 * 1024 + 1, 0);
    let (s, b) = api
        .upload(
            post.clone(),
            &media_path,
            Some(&provider),
            "big.png",
            "image/png",
            huge,
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert_eq!(b["error"]["code"], "payload_too_large");
    assert_eq!(files(stored_in).len(), stored, "{:?}", files(stored_in));
    assert!(
        files(&dir.path().join("spool")).is_empty(),
        "spool: {:?}",
        files(&dir.path().join("spool"))
    );

    // Deleted by its owner: gone from the listing, the URL and the store.
    let media_id = image["id"].as_str().unwrap();
    let (s, _) = api
        .json(
            reqwest::Method::DELETE,
            &format!("{media_path}/{media_id}"),
            Some(&other),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .json(
            reqwest::Method::DELETE,
            &format!("{media_path}/{media_id}"),
            Some(&provider),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(files(stored_in).len(), 1, "only the video is left");

    // A realtor's photo: images only, one at a time.
    let put = reqwest::Method::PUT;
    let (s, b) = api
        .upload(
            put.clone(),
            "/realtors/me/photo",
            Some(&realtor),
            "me.mp4",
            "video/mp4",
            mp4(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = api
        .upload(
            put.clone(),
            "/realtors/me/photo",
            Some(&customer),
            "me.jpg",
            "image/jpeg",
            jpg.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, first) = api
        .upload(
            put.clone(),
            "/realtors/me/photo",
            Some(&realtor),
            "me.jpg",
            "image/jpeg",
            jpg.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, second) = api
        .upload(
            put.clone(),
            "/realtors/me/photo",
            Some(&realtor),
            "me2.png",
            "image/png",
            png(40, 40),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(
        reqwest::get(first["url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reqwest::get(second["url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(files(stored_in).len(), 3, "video + photo + its thumbnail");
    let me = api
        .json(reqwest::Method::GET, "/iam/me", Some(&realtor), Value::Null)
        .await
        .1;
    let profile_path = format!("/realtors/{}", me["id"].as_str().unwrap());
    let (_, profile) = api
        .json(reqwest::Method::GET, &profile_path, None, Value::Null)
        .await;
    assert_eq!(profile["photo"]["url"], second["url"], "{profile}");
    let (s, _) = api
        .json(
            reqwest::Method::DELETE,
            "/realtors/me/photo",
            Some(&realtor),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(files(stored_in).len(), 1);

    // `DELETE /media/{id}`: owners and admins only.
    let video_path = format!("/media/{}", video["id"].as_str().unwrap());
    let refused = [
        (None, StatusCode::UNAUTHORIZED),
        (Some(other.as_str()), StatusCode::FORBIDDEN),
        (Some(realtor.as_str()), StatusCode::FORBIDDEN),
    ];
    for (token, want) in refused {
        let (s, b) = api
            .json(reqwest::Method::DELETE, &video_path, token, Value::Null)
            .await;
        assert_eq!(s, want, "{b}");
    }
    let (s, _) = api
        .json(
            reqwest::Method::DELETE,
            &video_path,
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(files(stored_in).is_empty(), "{:?}", files(stored_in));
    let (s, _) = api
        .json(
            reqwest::Method::DELETE,
            &video_path,
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_round_trip_on_the_local_store() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    round_trip(&url, store.path(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_round_trip_on_s3() {
    let root = tempfile::tempdir().unwrap();
    let (_s3, endpoint) = common::start_s3(root.path(), "media");
    let env = [
        ("AWS_ACCESS_KEY_ID", "tourwise".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "tourwise-secret".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", endpoint),
    ];
    round_trip("s3://media", &root.path().join("media"), &env).await;
}
