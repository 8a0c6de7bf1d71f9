//! The relational design: PostgreSQL + PostGIS. A row per realtor and slot with the realtor's
//! home as `geography`, a partial GiST index on `(slot, home)` over the available rows (btree_gist
//! for the slot), and the bookings as rows. A query takes the nearest available rows by KNN
//! (`ORDER BY home <-> point LIMIT k`), each with its realtor's profile and that day's bookings in
//! the same round trip, checks the calendars nearest first, and pages on with a larger `k` until
//! no row further down can be nearer than the best feasible one.

use std::sync::Arc;

use crate::slots::{
    better, decode_bookings, may_beat, slot_start, Answer, SlotCity, SlotQuery, MAX_RADIUS_KM,
    SLOTS_PER_DAY,
};
use anyhow::Context as _;
use engine::feasibility::Scratch;
use engine::{Location, RealtorId};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

use super::Design;

const FIRST_LIMIT: i64 = 16;

pub struct PostgisDesign {
    db: DatabaseConnection,
    admin: DatabaseConnection,
    name: String,
    city: Arc<SlotCity>,
}

const SCHEMA: &str = "
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE realtor (id uuid PRIMARY KEY, lat float8 NOT NULL, lng float8 NOT NULL,
                      radius_km float8 NOT NULL);
CREATE TABLE realtor_slot (realtor_id uuid NOT NULL, slot int NOT NULL, available bool NOT NULL,
                           home geography(Point, 4326) NOT NULL);
CREATE TABLE booking (realtor_id uuid NOT NULL, start_s bigint NOT NULL, end_s bigint NOT NULL,
                      first_lat float8 NOT NULL, first_lng float8 NOT NULL,
                      last_lat float8 NOT NULL, last_lng float8 NOT NULL);
";

const INDEXES: &str = "
CREATE INDEX realtor_slot_available ON realtor_slot USING gist (slot, home) WHERE available;
CREATE INDEX booking_by_realtor ON booking (realtor_id, start_s);
ANALYZE;
";

/// KNN over the available rows of one slot, with each candidate's profile and day of bookings.
const NEAREST: &str = "
SELECT s.realtor_id::text AS id, r.lat, r.lng, r.radius_km,
       ST_Distance(s.home, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, false) / 1000.0 AS km,
       (SELECT string_agg(concat_ws(',', b.start_s, b.end_s, b.first_lat, b.first_lng,
                                    b.last_lat, b.last_lng), ';')
          FROM booking b
         WHERE b.realtor_id = s.realtor_id AND b.start_s < $4 AND b.end_s > $3) AS cal
  FROM realtor_slot s JOIN realtor r ON r.id = s.realtor_id
 WHERE s.available AND s.slot = $5
 ORDER BY s.home <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
 LIMIT $6 OFFSET $7";

/// A PostgreSQL array literal of `items`.
fn array<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let body: Vec<String> = items.map(|i| i.to_string()).collect();
    format!("{{{}}}", body.join(","))
}

impl PostgisDesign {
    /// Creates a database of its own on `server`, installs PostGIS when missing, loads the city.
    pub async fn load(server: &str, city: Arc<SlotCity>, pool: u32) -> anyhow::Result<Self> {
        let admin = Database::connect(format!("{server}/postgres"))
            .await
            .with_context(|| format!("PostgreSQL at {server} is not reachable"))?;
        ensure_postgis(&admin).await?;
        let name = format!("tourwise_compare_{}", std::process::id());
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut options = ConnectOptions::new(format!("{server}/{name}"));
        options
            .max_connections(pool)
            .min_connections(pool)
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        db.execute_unprepared(SCHEMA).await?;
        for chunk in city.realtors.chunks(5000) {
            let sql = format!(
                "INSERT INTO realtor SELECT * FROM unnest('{}'::uuid[], '{}'::float8[], '{}'::float8[], '{}'::float8[])",
                array(chunk.iter().map(|r| r.id.0)),
                array(chunk.iter().map(|r| r.home.lat())),
                array(chunk.iter().map(|r| r.home.lng())),
                array(chunk.iter().map(|r| r.radius_km)),
            );
            db.execute_unprepared(&sql).await?;
            let slots = city.slots();
            let rows = || chunk.iter().flat_map(|r| (0..slots).map(move |s| (r, s)));
            let sql = format!(
                "INSERT INTO realtor_slot SELECT r, s, a, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography
                   FROM unnest('{}'::uuid[], '{}'::int[], '{}'::bool[], '{}'::float8[], '{}'::float8[])
                     AS t(r, s, a, lng, lat)",
                array(rows().map(|(r, _)| r.id.0)),
                array(rows().map(|(_, s)| s)),
                array(rows().map(|(r, s)| r.booked[s].is_none())),
                array(rows().map(|(r, _)| r.home.lng())),
                array(rows().map(|(r, _)| r.home.lat())),
            );
            db.execute_unprepared(&sql).await?;
            let bookings = || {
                chunk
                    .iter()
                    .flat_map(|r| r.booked.iter().flatten().map(move |b| (r.id.0, b)))
            };
            let sql = format!(
                "INSERT INTO booking SELECT * FROM unnest('{}'::uuid[], '{}'::int8[], '{}'::int8[],
                   '{}'::float8[], '{}'::float8[], '{}'::float8[], '{}'::float8[])",
                array(bookings().map(|(id, _)| id)),
                array(bookings().map(|(_, b)| b.start)),
                array(bookings().map(|(_, b)| b.end)),
                array(bookings().map(|(_, b)| b.first.lat())),
                array(bookings().map(|(_, b)| b.first.lng())),
                array(bookings().map(|(_, b)| b.last.lat())),
                array(bookings().map(|(_, b)| b.last.lng())),
            );
            db.execute_unprepared(&sql).await?;
        }
        db.execute_unprepared(INDEXES).await?;
        Ok(PostgisDesign {
            db,
            admin,
            name,
            city,
        })
    }

    /// Table and index bytes of the data set.
    pub async fn size(&self) -> u64 {
        let sql =
            "SELECT (pg_total_relation_size('realtor') + pg_total_relation_size('realtor_slot')
                         + pg_total_relation_size('booking'))::int8 AS bytes";
        let row = self
            .db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .ok()
            .flatten();
        row.and_then(|r| r.try_get::<i64>("", "bytes").ok())
            .map_or(0, |b| b.max(0) as u64)
    }

    /// Drops the database this run created.
    pub async fn unload(self) -> anyhow::Result<()> {
        self.db.close().await?;
        self.admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// `CREATE EXTENSION postgis` needs the server's package: install it (Debian) when it is missing.
async fn ensure_postgis(admin: &DatabaseConnection) -> anyhow::Result<()> {
    let available = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*)::int8 AS n FROM pg_available_extensions WHERE name = 'postgis'",
        ))
        .await?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0);
    if available > 0 {
        return Ok(());
    }
    let major = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT (current_setting('server_version_num')::int / 10000)::int8 AS v",
        ))
        .await?
        .and_then(|r| r.try_get::<i64>("", "v").ok())
        .context("server version")?;
    let package = format!("postgresql-{major}-postgis-3");
    eprintln!("installing {package} (PostGIS is missing)");
    let status = std::process::Command::new("apt-get")
        .args(["install", "-y", "-q", &package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("apt-get")?;
    anyhow::ensure!(status.success(), "apt-get install {package} failed");
    Ok(())
}

#[async_trait::async_trait]
impl Design for PostgisDesign {
    fn name(&self) -> &'static str {
        "PostGIS KNN + calendar check"
    }

    async fn nearest(&self, query: &SlotQuery) -> anyhow::Result<Option<RealtorId>> {
        let at = query.at();
        let day = SlotCity::day_of(query.slot);
        let day_start = slot_start(day * SLOTS_PER_DAY);
        let day_end = day_start + 86_400;
        let mut best: Option<Answer> = None;
        let mut scratch = Scratch::default();
        let (mut offset, mut limit) = (0i64, FIRST_LIMIT);
        loop {
            let rows = self
                .db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    NEAREST,
                    [
                        at.lng().into(),
                        at.lat().into(),
                        day_start.into(),
                        day_end.into(),
                        (query.slot as i32).into(),
                        limit.into(),
                        offset.into(),
                    ],
                ))
                .await?;
            for row in &rows {
                let km: f64 = row.try_get("", "km")?;
                if km > MAX_RADIUS_KM * 1.01 + 0.01 {
                    // Beyond every service radius: nobody further down can take the tour.
                    return Ok(best.map(|b| b.2));
                }
                if let Some(b) = best {
                    if !may_beat(km, b.0) {
                        return Ok(Some(b.2));
                    }
                }
                let id: String = row.try_get("", "id")?;
                let home = Location::new(row.try_get("", "lat")?, row.try_get("", "lng")?)?;
                let cal: Option<String> = row.try_get("", "cal")?;
                let bookings = decode_bookings(cal.as_deref().unwrap_or(""));
                let id = RealtorId(uuid::Uuid::parse_str(&id)?);
                let radius: f64 = row.try_get("", "radius_km")?;
                if let Some(a) = self
                    .city
                    .check(query, id, home, radius, &bookings, &mut scratch)
                {
                    best = Some(better(best, a));
                }
            }
            if (rows.len() as i64) < limit {
                return Ok(best.map(|b| b.2));
            }
            offset += limit;
            limit *= 4;
        }
    }
}
