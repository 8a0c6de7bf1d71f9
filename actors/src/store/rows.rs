//! Rows to domain values: the columns each query selects and how they decode.
//!
//! A row that does not decode (bad JSON, an unknown status) is a [`DbErr::Type`]/[`DbErr::Json`],
//! reported as [`super::StoreError::Database`]: the schema's writers are all in this module's
//! crate, so it means a bug or a manual edit, not bad input.

use chrono::{DateTime, Utc};
use engine::{
    Booking, CustomerId, Explanation, Location, PaymentId, Realtor, RealtorId, RealtorStatus, Stop,
    TimeWindow, TimeZone, TourId, TourStatus, WorkingHours, WorkingInterval,
};
use sea_orm::{DbErr, QueryResult};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::TourRecord;

/// Every column of `tours` that [`tour_from_row`] reads.
pub(super) const TOUR_COLUMNS: [&str; 17] = [
    "id",
    "payment_id",
    "customer_id",
    "status",
    "listings",
    "window_start",
    "window_end",
    "duration_minutes",
    "realtor_id",
    "start_at",
    "end_at",
    "reason",
    "declined",
    "explanation",
    "version",
    "created_at",
    "updated_at",
];

/// The columns of `tours` that [`booking_from_row`] reads.
pub(super) const BOOKING_COLUMNS: [&str; 5] =
    ["id", "realtor_id", "start_at", "end_at", "listings"];

/// The columns of `realtor_profiles` that [`realtor_from_row`] reads.
pub(super) const REALTOR_COLUMNS: [&str; 7] = [
    "user_id",
    "home_lat",
    "home_lng",
    "service_radius_km",
    "time_zone",
    "working_hours",
    "status",
];

fn json<T: DeserializeOwned>(row: &QueryResult, col: &str) -> Result<T, DbErr> {
    let value: serde_json::Value = row.try_get("", col)?;
    serde_json::from_value(value).map_err(|err| DbErr::Json(format!("tours.{col}: {err}")))
}

fn invalid(what: impl std::fmt::Display) -> DbErr {
    DbErr::Type(what.to_string())
}

/// Decodes a row selected with [`TOUR_COLUMNS`].
pub(super) fn tour_from_row(row: &QueryResult) -> Result<TourRecord, DbErr> {
    let status: String = row.try_get("", "status")?;
    let status =
        TourStatus::parse(&status).ok_or_else(|| invalid(format!("tour status {status:?}")))?;
    let window_start: DateTime<Utc> = row.try_get("", "window_start")?;
    let window_end: DateTime<Utc> = row.try_get("", "window_end")?;
    let window = TimeWindow::new(window_start, window_end).map_err(invalid)?;
    let explanation: Option<serde_json::Value> = row.try_get("", "explanation")?;
    let explanation = explanation
        .map(serde_json::from_value::<Explanation>)
        .transpose()
        .map_err(|err| DbErr::Json(format!("tours.explanation: {err}")))?;
    let realtor_id: Option<Uuid> = row.try_get("", "realtor_id")?;
    Ok(TourRecord {
        id: TourId(row.try_get("", "id")?),
        payment_id: PaymentId(row.try_get("", "payment_id")?),
        customer_id: CustomerId(row.try_get("", "customer_id")?),
        status,
        stops: json(row, "listings")?,
        window,
        duration_minutes: row.try_get("", "duration_minutes")?,
        realtor_id: realtor_id.map(RealtorId),
        start: row.try_get("", "start_at")?,
        end: row.try_get("", "end_at")?,
        reason: row.try_get("", "reason")?,
        declined: json(row, "declined")?,
        explanation,
        version: row.try_get("", "version")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// Decodes a row selected with [`BOOKING_COLUMNS`] (an active tour).
pub(super) fn booking_from_row(row: &QueryResult) -> Result<(RealtorId, Booking), DbErr> {
    let stops: Vec<Stop> = json(row, "listings")?;
    let (Some(first), Some(last)) = (stops.first(), stops.last()) else {
        return Err(invalid("active tour without listings"));
    };
    let start: DateTime<Utc> = row.try_get("", "start_at")?;
    let end: DateTime<Utc> = row.try_get("", "end_at")?;
    Ok((
        RealtorId(row.try_get("", "realtor_id")?),
        Booking {
            tour_id: TourId(row.try_get("", "id")?),
            start: start.timestamp(),
            end: end.timestamp(),
            first: first.location,
            last: last.location,
        },
    ))
}

/// Decodes a row selected with [`REALTOR_COLUMNS`]; the error says what is invalid.
pub(super) fn realtor_from_row(row: &QueryResult) -> Result<Realtor, String> {
    let text = |err: DbErr| err.to_string();
    let id: Uuid = row.try_get("", "user_id").map_err(text)?;
    let lat: f64 = row.try_get("", "home_lat").map_err(text)?;
    let lng: f64 = row.try_get("", "home_lng").map_err(text)?;
    let radius: f64 = row.try_get("", "service_radius_km").map_err(text)?;
    let zone: String = row.try_get("", "time_zone").map_err(text)?;
    let hours: serde_json::Value = row.try_get("", "working_hours").map_err(text)?;
    let status: String = row.try_get("", "status").map_err(text)?;
    realtor_from_parts(id, (lat, lng), radius, &zone, hours, &status)
}

/// The realtor of a `realtor.updated` event's data (written by `OutboxEvent::profile`).
///
/// # Errors
/// A field is missing or out of range.
pub fn realtor_from_event(data: &serde_json::Value) -> Result<Realtor, String> {
    let field = |name: &str| data.get(name).ok_or_else(|| format!("no {name}"));
    let number = |v: &serde_json::Value, name: &str| {
        v.as_f64().ok_or_else(|| format!("{name} is not a number"))
    };
    let text = |name: &str| -> Result<String, String> {
        field(name)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{name} is not a string"))
    };
    let id: Uuid = serde_json::from_value(field("realtor_id")?.clone())
        .map_err(|err| format!("realtor_id: {err}"))?;
    let home = field("home")?;
    let lat = number(&home["lat"], "home.lat")?;
    let lng = number(&home["lng"], "home.lng")?;
    let radius = number(field("service_radius_km")?, "service_radius_km")?;
    let hours = field("working_hours")?.clone();
    realtor_from_parts(
        id,
        (lat, lng),
        radius,
        &text("time_zone")?,
        hours,
        &text("status")?,
    )
}

fn realtor_from_parts(
    id: Uuid,
    (lat, lng): (f64, f64),
    radius: f64,
    zone: &str,
    hours: serde_json::Value,
    status: &str,
) -> Result<Realtor, String> {
    let home = Location::new(lat, lng).map_err(|err| err.to_string())?;
    let zone = TimeZone::parse(zone).map_err(|err| err.to_string())?;
    let intervals: Vec<WorkingInterval> =
        serde_json::from_value(hours).map_err(|err| format!("working_hours: {err}"))?;
    let status =
        RealtorStatus::parse(status).ok_or_else(|| format!("unknown status {status:?}"))?;
    Realtor::new(
        RealtorId(id),
        home,
        radius,
        WorkingHours::new(zone, intervals),
        status,
    )
    .map_err(|err| err.to_string())
}
