//! The design a team builds from the seed's "availability in Redis": one GEO set per slot holding
//! the realtors with nothing booked in it, one hash per realtor (home, radius, one field of
//! bookings per day). A query asks `GEOSEARCH ... BYRADIUS r ASC COUNT n WITHDIST` with growing
//! radii, fetches the candidates' hashes in one pipeline, and checks their calendars nearest first
//! until no unexamined member can be nearer than the best feasible one.

use std::sync::Arc;

use crate::slots::{
    better, decode_bookings, encode_bookings, may_beat, Answer, SlotCity, SlotQuery, MAX_RADIUS_KM,
};
use anyhow::Context as _;
use engine::feasibility::Scratch;
use engine::{Location, RealtorId};
use redis::aio::MultiplexedConnection;

use super::Design;

/// Radii tried in turn, km: a dense centre answers within the first, the edge of town needs more.
const RADII_KM: [f64; 5] = [2.0, 5.0, 10.0, 20.0, MAX_RADIUS_KM * 1.01 + 0.01];
/// Members asked for per GEOSEARCH at first.
const FIRST_COUNT: usize = 32;

pub struct RedisDesign {
    con: MultiplexedConnection,
    city: Arc<SlotCity>,
    prefix: String,
    /// What loading the city added to Redis's `used_memory`, bytes.
    pub bytes: u64,
}

impl RedisDesign {
    /// Loads the city into Redis under a prefix of its own.
    pub async fn load(url: &str, city: Arc<SlotCity>) -> anyhow::Result<RedisDesign> {
        let client = redis::Client::open(url).context("redis url")?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("Redis at {url} is not reachable"))?;
        let prefix = format!("tourwise:compare:{}:", std::process::id());
        let before = used_memory(&mut con).await;
        for slot in 0..city.slots() {
            let key = format!("{prefix}avail:{slot}");
            let free: Vec<_> = city
                .realtors
                .iter()
                .filter(|r| r.booked[slot].is_none())
                .collect();
            for chunk in free.chunks(2000) {
                let mut cmd = redis::cmd("GEOADD");
                cmd.arg(&key);
                for r in chunk {
                    cmd.arg(r.home.lng())
                        .arg(r.home.lat())
                        .arg(r.id.0.simple().to_string());
                }
                let () = cmd.query_async(&mut con).await?;
            }
        }
        for chunk in city.realtors.chunks(2000) {
            let mut pipe = redis::pipe();
            for r in chunk {
                let mut fields = vec![
                    ("lat".to_owned(), r.home.lat().to_string()),
                    ("lng".to_owned(), r.home.lng().to_string()),
                    ("radius".to_owned(), r.radius_km.to_string()),
                ];
                for (day, slots) in r.booked.chunks(crate::slots::SLOTS_PER_DAY).enumerate() {
                    fields.push((format!("d{day}"), encode_bookings(slots.iter().flatten())));
                }
                pipe.hset_multiple(format!("{prefix}r:{}", r.id.0.simple()), &fields)
                    .ignore();
            }
            let () = pipe.query_async(&mut con).await?;
        }
        let bytes = used_memory(&mut con).await.saturating_sub(before);
        Ok(RedisDesign {
            con,
            city,
            prefix,
            bytes,
        })
    }

    /// Deletes every key this run wrote.
    pub async fn unload(&self) -> anyhow::Result<()> {
        let mut con = self.con.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(5000)
                .query_async(&mut con)
                .await?;
            if !keys.is_empty() {
                let () = redis::cmd("UNLINK").arg(keys).query_async(&mut con).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Checks `members` (nearest first, with Redis's distances) until one proves the rest can't
    /// win. Returns whether the search is settled within what these members cover.
    async fn examine(
        &self,
        query: &SlotQuery,
        members: &[(String, f64)],
        best: &mut Option<Answer>,
    ) -> anyhow::Result<bool> {
        if members.is_empty() {
            return Ok(false);
        }
        let day = SlotCity::day_of(query.slot);
        let mut pipe = redis::pipe();
        for (id, _) in members {
            pipe.cmd("HMGET")
                .arg(format!("{}r:{id}", self.prefix))
                .arg("lat")
                .arg("lng")
                .arg("radius")
                .arg(format!("d{day}"));
        }
        let mut con = self.con.clone();
        let rows: Vec<(f64, f64, f64, Option<String>)> = pipe.query_async(&mut con).await?;
        let mut scratch = Scratch::default();
        for ((id, approx_km), (lat, lng, radius, cal)) in members.iter().zip(rows) {
            if let Some(b) = *best {
                if !may_beat(*approx_km, b.0) {
                    return Ok(true);
                }
            }
            let id = RealtorId(uuid::Uuid::parse_str(id)?);
            let home = Location::new(lat, lng)?;
            let bookings = decode_bookings(cal.as_deref().unwrap_or(""));
            if let Some(a) = self
                .city
                .check(query, id, home, radius, &bookings, &mut scratch)
            {
                *best = Some(better(*best, a));
            }
        }
        Ok(false)
    }
}

/// Redis's memory, bytes (`INFO memory` used_memory).
async fn used_memory(con: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(con)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[async_trait::async_trait]
impl Design for RedisDesign {
    fn name(&self) -> &'static str {
        "Redis GEOSEARCH + calendar check"
    }

    async fn nearest(&self, query: &SlotQuery) -> anyhow::Result<Option<RealtorId>> {
        let key = format!("{}avail:{}", self.prefix, query.slot);
        let at = query.at();
        let mut best: Option<Answer> = None;
        let mut seen = 0usize;
        for radius in RADII_KM {
            let mut count = FIRST_COUNT.max(seen * 2);
            loop {
                let mut con = self.con.clone();
                let members: Vec<(String, f64)> = redis::cmd("GEOSEARCH")
                    .arg(&key)
                    .arg("FROMLONLAT")
                    .arg(at.lng())
                    .arg(at.lat())
                    .arg("BYRADIUS")
                    .arg(radius)
                    .arg("km")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(count)
                    .arg("WITHDIST")
                    .query_async(&mut con)
                    .await?;
                let fresh = members.get(seen..).unwrap_or(&[]);
                if self.examine(query, fresh, &mut best).await? {
                    return Ok(best.map(|b| b.2));
                }
                seen = members.len();
                // Every member not returned is farther than what this reply covers.
                let covered = if members.len() < count {
                    radius
                } else {
                    members.last().map_or(0.0, |m| m.1)
                };
                if let Some(b) = best {
                    if !may_beat(covered, b.0) {
                        return Ok(Some(b.2));
                    }
                }
                if members.len() < count {
                    break;
                }
                count *= 4;
            }
        }
        Ok(best.map(|b| b.2))
    }
}
