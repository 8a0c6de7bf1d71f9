//! The committed inputs of the `payment_event` fuzz target (fuzz/seeds/payment_event: the seeds it
//! starts from and any input a fuzzing run found failing), replayed through the target's own
//! check on stable.

#[path = "../../fuzz/src/payment_event.rs"]
mod payment_event;

#[test]
fn every_payment_event_fuzz_seed_passes_the_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/payment_event");
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // Shown with the failure (the harness prints a failing test's output).
        eprintln!("replaying {}", path.display());
        payment_event::check(&bytes);
        replayed += 1;
    }
    assert!(replayed >= 7, "only {replayed} inputs in {dir}");
}
