//! The committed inputs of the `request_body` fuzz target (fuzz/seeds/request_body: the seeds it
//! starts from and any input a fuzzing run found failing), replayed through the target's own
//! check on stable: the real server answers each with success or a JSON error, never a 5xx.

#[path = "../../fuzz/src/request_body.rs"]
mod request_body;

#[test]
fn every_request_body_fuzz_seed_passes_the_check() {
    let target = request_body::Target::start();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/request_body");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        // Shown with the failure (the harness prints a failing test's output).
        eprintln!("replaying {}", path.display());
        target.check(&bytes);
    }
    assert!(paths.len() >= 48, "only {} inputs in {dir}", paths.len());
}
