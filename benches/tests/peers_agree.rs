//! The designs `compare` measures answer exactly as the engine does (issue #7): a design whose
//! answers differ is not faster, it is wrong. A small city against the real Redis and PostgreSQL
//! (+ PostGIS) at 127.0.0.1, as in CI.

use std::sync::Arc;

use benches::peers::{ActorsDesign, Design, EngineDesign, PostgisDesign, RedisDesign};
use benches::slots::{SlotCity, SlotQuery};
use engine::matching::index::DEFAULT_SEARCH_RESOLUTION;
use engine::Location;

/// A query somewhere nobody of the city can reach (Porto, ~270 km north of the metro).
fn out_of_town(slot: usize) -> Option<SlotQuery> {
    let porto = Location::new(41.15, -8.61).ok()?;
    SlotQuery::new(slot, porto, slot as u128, 1000 + slot as u128)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_postgis_and_the_actors_pick_the_engines_realtor() {
    let redis_url = std::env::var("TOURWISE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let pg_url = std::env::var("TOURWISE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let city = Arc::new(SlotCity::generate(11, 1500, 1, 0.3));
    let mut queries = city.queries(11, 400);
    queries.extend((0..5).filter_map(out_of_town));

    let engine = EngineDesign {
        index: city.index(DEFAULT_SEARCH_RESOLUTION),
    };
    let mut expected = Vec::new();
    for q in &queries {
        expected.push(engine.nearest(q).await.expect("engine"));
    }
    let assignable = expected.iter().filter(|e| e.is_some()).count();
    // Most queries have an answer, and the out-of-town ones have none: both paths are compared.
    assert!(assignable >= 300, "only {assignable} assignable");
    assert!(expected.iter().rev().take(5).all(Option::is_none));

    let actors = ActorsDesign::start(&city).await.expect("runtime");
    let redis = RedisDesign::load(&redis_url, city.clone())
        .await
        .expect("Redis");
    let postgis = PostgisDesign::load(&pg_url, city.clone(), 4)
        .await
        .expect("PostgreSQL with PostGIS");
    let designs: [&dyn Design; 3] = [&actors, &redis, &postgis];
    let mut wrong = Vec::new();
    for design in designs {
        for (i, q) in queries.iter().enumerate() {
            let got = design.nearest(q).await;
            match got {
                Ok(got) if got == expected[i] => {}
                other => wrong.push(format!(
                    "{}: query {i}: {other:?}, engine {:?}",
                    design.name(),
                    expected[i]
                )),
            }
        }
    }
    actors.runtime.clone().shutdown().await;
    redis.unload().await.expect("Redis clean-up");
    postgis.unload().await.expect("PostgreSQL clean-up");
    assert!(wrong.is_empty(), "answers differ:\n{}", wrong.join("\n"));
}
