//! The `tonnex-replay` command line as CONTRACTS.md fixes it: the last
//! line's format, the dumps, determinism, agreement with the independent
//! reference book in `shared/workloads/gen.py`, and exit status 2 with
//! `WORKLOAD:LINE: what is wrong` on a malformed line (or that line as a
//! JSON object under `--log-format json`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::synthetic_workload;

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tonnex-replay"))
        .args(args)
        .output()
        .expect("run tonnex-replay")
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tonnex-replay-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn last_line(output: &Output) -> String {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

fn field(line: &str, key: &str) -> u64 {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        .parse()
        .unwrap()
}

#[test]
fn last_line_has_the_contract_fields_and_latency_appends_percentiles() {
    let dir = scratch("fields");
    let workload = dir.join("w.txt");
    std::fs::write(&workload, synthetic_workload(5_000, 3)).unwrap();
    let output = replay(&[workload.to_str().unwrap(), "--repeat", "3"]);
    assert!(output.status.success());
    let line = last_line(&output);
    let keys: Vec<&str> = line
        .split(' ')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "ops",
            "trades",
            "volume",
            "resting",
            "elapsed_ns",
            "ops_per_sec"
        ]
    );
    assert_eq!(field(&line, "ops"), 5_000);
    assert!(field(&line, "trades") > 0);
    let output = replay(&[workload.to_str().unwrap(), "--latency"]);
    let line = last_line(&output);
    let keys: Vec<&str> = line
        .split(' ')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    assert_eq!(&keys[6..], ["p50_ns", "p99_ns", "p999_ns", "max_ns"]);
    assert!(field(&line, "p50_ns") <= field(&line, "p99_ns"));
    assert!(field(&line, "p99_ns") <= field(&line, "max_ns"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_same_workload_twice_gives_byte_identical_dumps() {
    let dir = scratch("determinism");
    let workload = dir.join("w.txt");
    std::fs::write(&workload, synthetic_workload(20_000, 11)).unwrap();
    let mut dumps = Vec::new();
    for run in 0..2 {
        let fills = dir.join(format!("fills{run}"));
        let book = dir.join(format!("book{run}"));
        let output = replay(&[
            workload.to_str().unwrap(),
            "--fills",
            fills.to_str().unwrap(),
            "--book",
            book.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        dumps.push((std::fs::read(fills).unwrap(), std::fs::read(book).unwrap()));
    }
    assert!(!dumps[0].0.is_empty() && !dumps[0].1.is_empty());
    assert_eq!(dumps[0], dumps[1]);
    // The dumps agree with the last line's counts.
    let output = replay(&[workload.to_str().unwrap()]);
    let line = last_line(&output);
    let fills = String::from_utf8(dumps[0].0.clone()).unwrap();
    assert_eq!(fills.lines().count() as u64, field(&line, "trades"));
    let volume: u64 = fills
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(volume, field(&line, "volume"));
    let book = String::from_utf8(dumps[0].1.clone()).unwrap();
    assert_eq!(book.lines().count() as u64, field(&line, "resting"));
    std::fs::remove_dir_all(dir).ok();
}

fn gen_py() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/workloads/gen.py");
    path.exists().then_some(path)
}

#[test]
fn fills_match_the_reference_book_of_gen_py() {
    let Some(gen) = gen_py() else {
        // CI always has shared/ beside the clone; a bare clone elsewhere may not.
        assert!(
            std::env::var_os("CI").is_none(),
            "shared/workloads/gen.py missing in CI"
        );
        eprintln!("skipping: shared/workloads/gen.py not found");
        return;
    };
    let dir = scratch("gen");
    for (profile, mix, seed) in [
        ("steady", "full", 5),
        ("deep", "full", 6),
        ("steady", "basic", 7),
        ("deep", "basic", 8),
    ] {
        let workload = dir.join(format!("{profile}-{mix}.txt"));
        let want = dir.join(format!("{profile}-{mix}.want"));
        let got = dir.join(format!("{profile}-{mix}.got"));
        let generated = Command::new("python3")
            .arg(&gen)
            .args([
                "--ops",
                "30000",
                "--seed",
                &seed.to_string(),
                "--profile",
                profile,
                "--mix",
                mix,
            ])
            .arg("--fills")
            .arg(&want)
            .output()
            .expect("python3 runs gen.py");
        assert!(
            generated.status.success(),
            "{}",
            String::from_utf8_lossy(&generated.stderr)
        );
        std::fs::write(&workload, generated.stdout).unwrap();
        let output = replay(&[workload.to_str().unwrap(), "--fills", got.to_str().unwrap()]);
        assert!(output.status.success());
        let (want, got) = (std::fs::read(&want).unwrap(), std::fs::read(&got).unwrap());
        assert!(!want.is_empty());
        assert!(
            want == got,
            "{profile}/{mix}: fills differ from gen.py's reference"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_malformed_line_exits_2_naming_file_and_line_with_nothing_on_stdout() {
    let dir = scratch("malformed");
    let workload = dir.join("bad.txt");
    std::fs::write(
        &workload,
        "# header\nN 1 1 B L 2500 10\nN 2 1 B Z 2500 10\nC 1\n",
    )
    .unwrap();
    let output = replay(&[workload.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let expected = format!(
        "{}:3: type must be one of L M I F P, found 'Z'",
        workload.display()
    );
    assert_eq!(stderr.lines().next().unwrap(), expected);
    // With --log-format json the same words come as one ERROR object.
    let json = replay(&["--log-format", "json", workload.to_str().unwrap()]);
    assert_eq!(json.status.code(), Some(2));
    assert!(json.stdout.is_empty());
    let stderr = String::from_utf8(json.stderr).unwrap();
    let event: serde_json::Value = serde_json::from_str(stderr.trim_end())
        .unwrap_or_else(|e| panic!("not one JSON object: {stderr}: {e}"));
    assert_eq!(event["level"], "ERROR");
    assert_eq!(event["fields"]["message"], expected.as_str());
    assert_eq!(
        replay(&["--log-format", "xml", workload.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    // A missing file and a bad flag are errors too, also with status 2.
    assert_eq!(
        replay(&[dir.join("absent").to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        replay(&[workload.to_str().unwrap(), "--repeat", "0"])
            .status
            .code(),
        Some(2)
    );
    std::fs::remove_dir_all(dir).ok();
}
