//! Bit-identical output whatever the thread count, sharding or interruptions.

mod common;
use common::*;

fn smoke_run(data: &std::path::Path, extra: &[&str]) {
    let mut args = vec!["--pipeline", "smoke", "--data", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_ok(&args);
}

#[test]
fn threads_do_not_change_the_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("t1"), tmp.path().join("t2"));
    smoke_run(&a, &["--threads", "1"]);
    smoke_run(&b, &["--threads", "2"]);
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    assert!(sa.len() > 50, "smoke writes many parts ({})", sa.len());
    assert_eq!(sa, sb);
}

#[test]
fn shards_union_equals_full_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, sharded) = (tmp.path().join("full"), tmp.path().join("sharded"));
    smoke_run(&full, &[]);
    // Shards in a scrambled order, each writing a disjoint third.
    let mut seen = 0;
    for shard in ["3/3", "1/3", "2/3"] {
        smoke_run(&sharded, &["--shard", shard]);
        let now = snapshot(&sharded).len();
        assert!(now > seen, "shard {shard} wrote nothing");
        seen = now;
    }
    assert_eq!(snapshot(&full), snapshot(&sharded));
}

#[test]
fn resume_after_loss_equals_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, resumed) = (tmp.path().join("full"), tmp.path().join("resumed"));
    smoke_run(&full, &[]);
    smoke_run(&resumed, &[]);
    // Simulate a run killed part-way: some parts missing, a writer's temp file left behind.
    let bag = nnqft_store::samples::bag_dir(&resumed, "relu-d1", 10, 2);
    std::fs::remove_file(bag.join("part-00001.parquet")).unwrap();
    std::fs::remove_dir_all(nnqft_store::samples::bag_dir(&resumed, "erf-d1", 3, 0)).unwrap();
    std::fs::write(bag.join(".part-00001.parquet.tmp-999999999-0"), b"half a file").unwrap();
    let out = run_ok(&["--pipeline", "smoke", "--data", resumed.to_str().unwrap()]);
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(msg.contains("wrote 4 parts"), "{msg}");
    assert!(msg.contains("92 parts already done"), "{msg}");
    assert_eq!(snapshot(&full), snapshot(&resumed), "resumed data (and no leftover temp file)");
}

#[test]
fn force_rewrites_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    smoke_run(&d, &[]);
    let before = snapshot(&d);
    let out = run_ok(&["--pipeline", "smoke", "--data", d.to_str().unwrap(), "--force"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 96 parts"));
    assert_eq!(before, snapshot(&d));
}
