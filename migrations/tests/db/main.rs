//! The migrations against real databases: PostgreSQL (a fresh database per test, see
//! `TOURWISE_TEST_PG_URL`) and SQLite (a fresh file per test). One test binary.

mod postgres;
mod schema;
mod sqlite;
mod support;
