//! Media endpoints (issue #12): uploads of listing images and videos and of realtor photos
//! (multipart, part `file`), deletes by the owner or an admin, and public reads of the bytes
//! with their content type, an ETag and long-lived cache headers (a media id never changes
//! its bytes).

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt as _;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Code};
use crate::media::{Stored, VIDEO_LIMIT};
use crate::perm::{Capability, Role};
use crate::state::AppState;

/// Owner kinds.
const LISTING: &str = "listing";
const REALTOR_PHOTO: &str = "realtor_photo";

/// A stored image or video, as listings and profiles carry it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MediaRef {
    /// Id.
    pub id: Uuid,
    /// `image` or `video`.
    pub kind: String,
    /// `image/jpeg`, `image/png`, `image/webp` or `video/mp4`.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Where to read the bytes (public).
    pub url: String,
    /// A JPEG thumbnail of an image (null for a video).
    pub thumbnail_url: Option<String>,
}

struct Row {
    id: Uuid,
    owner_id: Uuid,
    kind: String,
    content_type: String,
    size: i64,
    sha256: String,
    key: String,
    thumbnail_key: Option<String>,
}

const COLUMNS: [&str; 8] = [
    "id",
    "owner_id",
    "kind",
    "content_type",
    "size_bytes",
    "sha256",
    "object_key",
    "thumbnail_key",
];

fn from_row(row: &QueryResult) -> Result<Row, sea_orm::DbErr> {
    Ok(Row {
        id: row.try_get("", "id")?,
        owner_id: row.try_get("", "owner_id")?,
        kind: row.try_get("", "kind")?,
        content_type: row.try_get("", "content_type")?,
        size: row.try_get("", "size_bytes")?,
        sha256: row.try_get("", "sha256")?,
        key: row.try_get("", "object_key")?,
        thumbnail_key: row.try_get("", "thumbnail_key")?,
    })
}

fn reference(state: &AppState, row: &Row) -> MediaRef {
    let base = state.public_url.get().map_or("", String::as_str);
    MediaRef {
        id: row.id,
        kind: row.kind.clone(),
        content_type: row.content_type.clone(),
        size_bytes: row.size,
        url: format!("{base}/media/{}", row.id),
        thumbnail_url: row
            .thumbnail_key
            .as_ref()
            .map(|_| format!("{base}/media/{}/thumbnail", row.id)),
    }
}

async fn rows<C: ConnectionTrait>(
    conn: &C,
    owner_kind: &str,
    owners: &[Uuid],
) -> Result<Vec<Row>, ApiError> {
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    let select = Query::select()
        .columns(COLUMNS)
        .from("media")
        .and_where(Expr::col("owner_kind").eq(owner_kind))
        .and_where(Expr::col("owner_id").is_in(owners.iter().copied()))
        .order_by("id", Order::Asc)
        .to_owned();
    Ok(conn
        .query_all(&select)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<_, _>>()?)
}

/// The media of each listing in `listings`, in upload order.
///
/// # Errors
/// The database fails.
pub async fn of_listings(
    state: &AppState,
    listings: &mut [super::listings::Listing],
) -> Result<(), ApiError> {
    let ids: Vec<Uuid> = listings.iter().map(|l| l.id).collect();
    let found = rows(&state.db, LISTING, &ids).await?;
    for listing in listings.iter_mut() {
        listing.media = found
            .iter()
            .filter(|r| r.owner_id == listing.id)
            .map(|r| reference(state, r))
            .collect();
    }
    Ok(())
}

/// The photo of a realtor, if any.
///
/// # Errors
/// The database fails.
pub async fn photo_of(state: &AppState, realtor: Uuid) -> Result<Option<MediaRef>, ApiError> {
    Ok(rows(&state.db, REALTOR_PHOTO, &[realtor])
        .await?
        .last()
        .map(|r| reference(state, r)))
}

/// A listing whose media the caller may change: 403 by role or for someone else's listing
/// they can see, 404 for one they cannot.
async fn listing_to_change(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<super::listings::Listing, ApiError> {
    let access = caller.may(Capability::ManageListing)?;
    let listing = super::listings::find(state, id)
        .await?
        .filter(|l| super::listings::visible(l, Some(caller)))
        .ok_or_else(|| ApiError::not_found("listing"))?;
    if !caller.reaches(access, listing.owner_id) {
        return Err(ApiError::new(Code::Forbidden, "this listing is not yours"));
    }
    Ok(listing)
}

/// Takes the `file` part of `payload` into the media store.
async fn receive(
    state: &AppState,
    req: &HttpRequest,
    id: Uuid,
    mut payload: Multipart,
    accept_video: bool,
) -> Result<Stored, ApiError> {
    // A declared length past every limit is refused before anything is read.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > VIDEO_LIMIT + 64 * 1024) {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            "the upload is over 200 MB",
        ));
    }
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(bad_multipart)?;
        if field.name() == Some("file") {
            return state.media.store(id, field, accept_video).await;
        }
        // Other parts are read and dropped (they must be consumed before the next one).
        while let Some(chunk) = field.next().await {
            chunk.map_err(bad_multipart)?;
        }
    }
    Err(ApiError::new(
        Code::BadRequest,
        "a multipart/form-data body with a `file` part is required",
    ))
}

fn bad_multipart(err: actix_multipart::MultipartError) -> ApiError {
    ApiError::new(Code::BadRequest, format!("malformed multipart body: {err}"))
}

/// Records `stored` for `owner`; the objects are removed again when the row cannot be written.
async fn record(
    state: &AppState,
    id: Uuid,
    owner_kind: &str,
    owner: Uuid,
    uploaded_by: Uuid,
    stored: &Stored,
) -> Result<Vec<Row>, ApiError> {
    let insert = Query::insert()
        .into_table("media")
        .columns([
            "id",
            "owner_kind",
            "owner_id",
            "uploaded_by",
            "kind",
            "content_type",
            "size_bytes",
            "sha256",
            "object_key",
            "thumbnail_key",
            "created_at",
        ])
        .values_panic([
            id.into(),
            owner_kind.into(),
            owner.into(),
            uploaded_by.into(),
            stored.kind.as_str().into(),
            stored.content_type.into(),
            i64::try_from(stored.size).unwrap_or(i64::MAX).into(),
            stored.sha256.clone().into(),
            stored.key.clone().into(),
            stored.thumbnail_key.clone().into(),
            Utc::now().into(),
        ])
        .to_owned();
    let written = async {
        let txn = state.db.begin().await?;
        // A realtor has one photo: the new one replaces the old.
        let replaced = if owner_kind == REALTOR_PHOTO {
            let old = rows(&txn, REALTOR_PHOTO, &[owner]).await?;
            let delete = Query::delete()
                .from_table("media")
                .and_where(Expr::col("owner_kind").eq(REALTOR_PHOTO))
                .and_where(Expr::col("owner_id").eq(owner))
                .to_owned();
            txn.execute(&delete).await?;
            old
        } else {
            Vec::new()
        };
        txn.execute(&insert).await?;
        txn.commit().await?;
        Ok::<_, ApiError>(replaced)
    }
    .await;
    match written {
        Ok(replaced) => Ok(replaced),
        Err(err) => {
            remove_objects(state, &stored.key, stored.thumbnail_key.as_deref()).await;
            Err(err)
        }
    }
}

async fn remove_objects(state: &AppState, key: &str, thumbnail: Option<&str>) {
    state.media.delete(key).await;
    if let Some(t) = thumbnail {
        state.media.delete(t).await;
    }
}

/// `POST /listings/{id}/media` (multipart `file`): an image (<= 10 MB) or MP4 video (<= 200 MB).
///
/// # Errors
/// 401/403/404 as for changing the listing; 413 over the limit; 422 for other content.
pub async fn upload_listing(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Uuid>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let listing = listing_to_change(&state, &caller, *id).await?;
    let media_id = Uuid::now_v7();
    let stored = receive(&state, &req, media_id, payload, true).await?;
    record(&state, media_id, LISTING, listing.id, caller.id, &stored).await?;
    state.search_cache.invalidate().await;
    let row = one(&state, media_id).await?;
    Ok(HttpResponse::Created().json(reference(&state, &row)))
}

async fn one(state: &AppState, id: Uuid) -> Result<Row, ApiError> {
    let select = Query::select()
        .columns(COLUMNS)
        .from("media")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    state
        .db
        .query_one(&select)
        .await?
        .map(|r| from_row(&r))
        .transpose()?
        .ok_or_else(|| ApiError::not_found("media"))
}

async fn delete_row(state: &AppState, row: &Row) -> Result<(), ApiError> {
    let delete = Query::delete()
        .from_table("media")
        .and_where(Expr::col("id").eq(row.id))
        .to_owned();
    state.db.execute(&delete).await?;
    remove_objects(state, &row.key, row.thumbnail_key.as_deref()).await;
    Ok(())
}

/// `DELETE /media/{id}`: any image or video, by its owner (the listing's provider, the realtor
/// of a photo) or an admin.
///
/// # Errors
/// 401; 403 for others; 404 unknown.
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = one(&state, *id).await?;
    let kind = owner_kind(&state, row.id).await?;
    if kind == LISTING {
        listing_to_change(&state, &caller, row.owner_id).await?;
    } else if !(caller.role == Role::Admin || caller.id == row.owner_id) {
        return Err(ApiError::new(Code::Forbidden, "this photo is not yours"));
    }
    delete_row(&state, &row).await?;
    if kind == LISTING {
        state.search_cache.invalidate().await;
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn owner_kind(state: &AppState, id: Uuid) -> Result<String, ApiError> {
    let select = Query::select()
        .column("owner_kind")
        .from("media")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let row = state
        .db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::not_found("media"))?;
    Ok(row.try_get("", "owner_kind")?)
}

/// `DELETE /listings/{id}/media/{media_id}` (the listing's owner or an admin).
///
/// # Errors
/// 401/403/404.
pub async fn delete_listing_media(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (listing, media) = path.into_inner();
    let listing = listing_to_change(&state, &caller, listing).await?;
    let row = one(&state, media).await?;
    if row.owner_id != listing.id {
        return Err(ApiError::not_found("media"));
    }
    delete_row(&state, &row).await?;
    state.search_cache.invalidate().await;
    Ok(HttpResponse::NoContent().finish())
}

fn realtor_only(caller: &Caller) -> Result<(), ApiError> {
    caller.may(Capability::SetRealtorProfile)?;
    if caller.role == Role::Realtor {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::Forbidden,
            "only realtors have a profile photo",
        ))
    }
}

/// `PUT /realtors/me/photo` (multipart `file`, an image <= 10 MB): replaces the photo.
///
/// # Errors
/// 401/403; 413 over the limit; 422 for anything but a JPEG, PNG or WebP image.
pub async fn put_photo(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    realtor_only(&caller)?;
    let media_id = Uuid::now_v7();
    let stored = receive(&state, &req, media_id, payload, false).await?;
    let replaced = record(
        &state,
        media_id,
        REALTOR_PHOTO,
        caller.id,
        caller.id,
        &stored,
    )
    .await?;
    for old in replaced {
        remove_objects(&state, &old.key, old.thumbnail_key.as_deref()).await;
    }
    let row = one(&state, media_id).await?;
    Ok(HttpResponse::Ok().json(reference(&state, &row)))
}

/// `DELETE /realtors/me/photo`.
///
/// # Errors
/// 401/403; 404 without a photo.
pub async fn delete_photo(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    realtor_only(&caller)?;
    let photos = rows(&state.db, REALTOR_PHOTO, &[caller.id]).await?;
    if photos.is_empty() {
        return Err(ApiError::not_found("photo"));
    }
    for row in &photos {
        delete_row(&state, row).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn serve(
    state: &AppState,
    req: &HttpRequest,
    key: &str,
    content_type: &str,
    etag: String,
) -> Result<HttpResponse, ApiError> {
    let etag = format!("\"{etag}\"");
    let cache = (header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header(cache)
            .finish());
    }
    let body =
        state.media.read(key).await?.map(|chunk| {
            chunk.map_err(|e| actix_web::error::ErrorServiceUnavailable(e.to_string()))
        });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::ETAG, etag))
        .insert_header(cache)
        .streaming(body))
}

/// `GET /media/{id}`: the bytes (public).
///
/// # Errors
/// 404 unknown.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = one(&state, *id).await?;
    serve(
        &state,
        &req,
        &row.key,
        &row.content_type,
        row.sha256.clone(),
    )
    .await
}

/// `GET /media/{id}/thumbnail`: the JPEG thumbnail of an image (public).
///
/// # Errors
/// 404 unknown, or a video.
pub async fn thumbnail(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = one(&state, *id).await?;
    let key = row
        .thumbnail_key
        .clone()
        .ok_or_else(|| ApiError::not_found("thumbnail"))?;
    serve(
        &state,
        &req,
        &key,
        "image/jpeg",
        format!("{}-thumb", row.sha256),
    )
    .await
}
