//! Cart actors end to end: the rules of CONTRACT 4 through [`Runtime`], on PostgreSQL and
//! SQLite; one command at a time per customer under concurrency; passivation after the idle
//! timeout (paused time, in-memory store) and a restart that loses nothing.

#[allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actors::bus::InProcessBus;
use actors::memstore::MemoryStore;
use actors::runtime::{CartError, Runtime, RuntimeConfig, TokioClock};
use actors::store::{CartListing, Point};
use chrono::{DateTime, Utc};
use engine::{CustomerId, ListingId, TimeWindow};
use migrations::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use support::{at, insert_users, Backend, TestDb};
use uuid::Uuid;

/// The runtime's calendar stands on the morning of the test day (`support::at`), whatever the
/// wall clock says: checkout refuses windows in the past, and the test day is a fixed date.
fn config() -> RuntimeConfig {
    RuntimeConfig {
        namespace: format!("t{}/", Uuid::new_v4().simple()),
        clock: Arc::new(TokioClock::starting_at(at(6, 0))),
        ..RuntimeConfig::default()
    }
}

fn window() -> TimeWindow {
    TimeWindow::new(at(9, 0), at(18, 0)).expect("window")
}

/// Inserts a listing owned by `owner` with `status`, priced `price` (index-based location).
async fn insert_listing(db: &DatabaseConnection, owner: Uuid, status: &str, price: i64) -> Uuid {
    let id = Uuid::new_v4();
    let now = Utc::now();
    let insert = Query::insert()
        .into_table("listings")
        .columns([
            "id",
            "owner_id",
            "title",
            "address",
            "lat",
            "lng",
            "cell",
            "price_cents",
            "status",
            "created_at",
            "updated_at",
        ])
        .values([
            id.into(),
            owner.into(),
            "A flat".into(),
            "Rua X 1".into(),
            38.72_f64.into(),
            (-9.14_f64).into(),
            1_i64.into(),
            price.into(),
            status.into(),
            now.into(),
            now.into(),
        ])
        .expect("values")
        .to_owned();
    db.execute(&insert).await.expect("insert listing");
    id
}

/// `(customer_id, amount_cents, status, listings)` of a stored payment.
async fn stored_payment(db: &DatabaseConnection, id: Uuid) -> (Uuid, i64, String, Vec<Uuid>) {
    let select = Query::select()
        .columns(["customer_id", "amount_cents", "status", "listings"])
        .from("payments")
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let row = db.query_one(&select).await.unwrap().expect("payment row");
    let listings: serde_json::Value = row.try_get("", "listings").unwrap();
    let ids = listings
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().parse().unwrap())
        .collect();
    (
        row.try_get("", "customer_id").unwrap(),
        row.try_get("", "amount_cents").unwrap(),
        row.try_get("", "status").unwrap(),
        ids,
    )
}

fn ids(items: &[CartListing]) -> Vec<Uuid> {
    items.iter().map(|l| l.id.0).collect()
}

async fn the_cart_rules(db: &TestDb, _backend: Backend) {
    let (customer, provider) = (Uuid::new_v4(), Uuid::new_v4());
    insert_users(db.db(), &[customer, provider]).await;
    let mut published = Vec::new();
    for i in 0..9 {
        published.push(insert_listing(db.db(), provider, "published", 1000 + i).await);
    }
    let draft = insert_listing(db.db(), provider, "draft", 1).await;
    let rt = Runtime::start(
        Arc::new(db.store.clone()),
        Arc::new(InProcessBus::new()),
        config(),
    )
    .await
    .unwrap();
    let me = CustomerId(customer);

    let empty = rt.cart(me).await.unwrap();
    assert!(empty.items.is_empty() && empty.total_cents == 0);
    assert!(matches!(
        rt.checkout(me, window()).await,
        Err(CartError::Empty)
    ));
    for missing in [draft, Uuid::new_v4()] {
        assert!(matches!(
            rt.cart_add(me, ListingId(missing)).await,
            Err(CartError::ListingNotFound)
        ));
    }
    for (n, l) in published[..8].iter().enumerate() {
        let added = rt.cart_add(me, ListingId(*l)).await.unwrap();
        assert!(added.added);
        assert_eq!(ids(&added.cart.items), published[..=n]);
    }
    let again = rt.cart_add(me, ListingId(published[0])).await.unwrap();
    assert!(!again.added, "already in the cart: nothing changes");
    assert_eq!(again.cart.items.len(), 8);
    assert!(matches!(
        rt.cart_add(me, ListingId(published[8])).await,
        Err(CartError::Full)
    ));
    let after = rt.cart_remove(me, ListingId(published[3])).await.unwrap();
    assert_eq!(after.items.len(), 7);
    assert!(matches!(
        rt.cart_remove(me, ListingId(published[3])).await,
        Err(CartError::NotInCart)
    ));
    let cart = rt.cart(me).await.unwrap();
    assert_eq!(cart, after);
    assert_eq!(
        cart.total_cents,
        cart.items.iter().map(|l| l.price_cents).sum::<i64>()
    );

    // Before the runtime's clock (06:00 of the test day).
    let past = TimeWindow::new(at(1, 0), at(5, 0)).unwrap();
    assert!(matches!(
        rt.checkout(me, past).await,
        Err(CartError::Invalid(_))
    ));
    let done = rt.checkout(me, window()).await.unwrap();
    assert_eq!(done.amount_cents, cart.total_cents);
    assert_eq!(
        stored_payment(db.db(), done.payment_id.0).await,
        (
            customer,
            cart.total_cents,
            "pending".into(),
            ids(&cart.items)
        )
    );
    // Checking out keeps the cart; a succeeded payment empties it.
    assert_eq!(rt.cart(me).await.unwrap(), cart);
    rt.shutdown().await;
}
on_both!(the_cart_rules);

/// Many adds and checkouts of one customer at once: never more than 8 items, and every
/// payment holds exactly the listings of the cart it was made from (in cart order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_of_one_customer_run_one_at_a_time() {
    let db = TestDb::create(Backend::Sqlite).await;
    let (customer, provider) = (Uuid::new_v4(), Uuid::new_v4());
    insert_users(db.db(), &[customer, provider]).await;
    let mut listings = Vec::new();
    for i in 0..20 {
        listings.push(insert_listing(db.db(), provider, "published", 100 * (i + 1)).await);
    }
    let rt = Runtime::start(
        Arc::new(db.store.clone()),
        Arc::new(InProcessBus::new()),
        config(),
    )
    .await
    .unwrap();
    let me = CustomerId(customer);
    let mut tasks = tokio::task::JoinSet::new();
    for l in &listings {
        let (adder, l) = (rt.clone(), ListingId(*l));
        tasks.spawn(async move { (adder.cart_add(me, l).await.map(|a| a.added).ok(), None) });
        let buyer = rt.clone();
        tasks.spawn(async move { (None, Some(buyer.checkout(me, window()).await)) });
    }
    let (mut added, mut payments) = (0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            (Some(true), _) => added += 1,
            (_, Some(Ok(checkout))) => payments.push(checkout),
            _ => {}
        }
    }
    assert_eq!(added, 8, "a cart holds at most 8 listings");
    let cart = rt.cart(me).await.unwrap();
    assert_eq!(cart.items.len(), 8);
    let in_cart = ids(&cart.items);
    for p in &payments {
        let (_, amount, _, stored) = stored_payment(db.db(), p.payment_id.0).await;
        let returned: Vec<Uuid> = p.listings.iter().map(|s| s.id.0).collect();
        assert_eq!(stored, returned);
        // Items are only added: each payment's cart is a prefix of the final one.
        assert_eq!(stored, in_cart[..stored.len()], "{p:?}");
        let prices: i64 = cart.items[..stored.len()]
            .iter()
            .map(|l| l.price_cents)
            .sum();
        assert_eq!((amount, p.amount_cents), (prices, prices));
    }
    let distinct: HashSet<_> = payments.iter().map(|p| p.payment_id).collect();
    assert_eq!(distinct.len(), payments.len());
    rt.shutdown().await;
}

fn mem_listing(price: i64, status: &str) -> CartListing {
    let now = Utc::now();
    CartListing {
        id: ListingId(Uuid::new_v4()),
        owner_id: Uuid::new_v4(),
        title: "A flat".into(),
        address: "Rua X 1".into(),
        location: Point {
            lat: 38.72,
            lng: -9.14,
        },
        price_cents: price,
        status: status.into(),
        created_at: now,
        updated_at: now,
    }
}

fn start_of(clock_at: DateTime<Utc>) -> RuntimeConfig {
    RuntimeConfig {
        clock: Arc::new(TokioClock::starting_at(clock_at)),
        cart_idle_timeout: Duration::from_secs(10 * 60),
        ..config()
    }
}

/// An idle cart actor is stopped after the timeout, and the next command starts a new one
/// that finds the cart as stored; a panicking cart actor loses nothing either.
#[tokio::test(start_paused = true)]
async fn idle_carts_are_passivated_and_come_back_from_the_store() {
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (
        mem_listing(1000, "published"),
        mem_listing(2500, "published"),
    );
    store.put_listing(a.clone());
    store.put_listing(b.clone());
    let rt = Runtime::start(
        store.clone(),
        Arc::new(InProcessBus::new()),
        start_of(at(8, 0)),
    )
    .await
    .unwrap();
    let me = CustomerId(Uuid::new_v4());
    assert!(!rt.cart_running(me), "spawned on first use only");
    rt.cart_add(me, a.id).await.unwrap();
    assert!(rt.cart_running(me));

    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    // A message resets the idle timer.
    assert_eq!(ids(&rt.cart(me).await.unwrap().items), vec![a.id.0]);
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    assert!(rt.cart_running(me), "idle for 9 minutes only");
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    for _ in 0..100 {
        if !rt.cart_running(me) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!rt.cart_running(me), "passivated after 10 idle minutes");

    let added = rt.cart_add(me, b.id).await.unwrap();
    assert_eq!(ids(&added.cart.items), vec![a.id.0, b.id.0]);
    assert!(rt.cart_running(me));

    // A panic: the supervisor restarts the actor (or the next call starts one); nothing lost.
    assert!(rt.crash_cart(me));
    let done = rt.checkout(me, window()).await.unwrap();
    assert_eq!(done.amount_cents, 3500);
    assert_eq!(store.payments().len(), 1);
    assert_eq!(store.payments()[0].listings, done.listings);
    assert!(rt.healthy());
    rt.shutdown().await;
}
