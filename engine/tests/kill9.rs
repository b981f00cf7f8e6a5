//! A real crash: `tonnex-replay --journal-out` is killed with SIGKILL at
//! random moments while it journals a workload; recovery must then rebuild
//! exactly the state of the first `last_seq` commands (a prefix: nothing
//! journaled before the kill is lost, nothing is invented), whatever byte
//! the process died on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::synthetic_workload;

fn replay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tonnex-replay"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tonnex-kill9-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn book_after_journal(dir: &Path, book: &Path) -> u64 {
    let output = replay()
        .args([
            "--journal",
            dir.to_str().unwrap(),
            "--book",
            book.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "recovery failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    last.split(' ')
        .find_map(|kv| kv.strip_prefix("last_seq="))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn sigkill_while_journaling_loses_nothing_written_and_invents_nothing() {
    let dir = scratch("run");
    let text = synthetic_workload(400_000, 0x9E37_79B9_7F4A_7C15);
    let lines: Vec<&str> = text.lines().collect();
    let full = dir.join("workload.txt");
    std::fs::write(&full, &text).unwrap();
    let mut recovered_some = 0;
    for (round, delay_ms) in [0u64, 7, 20, 45, 90].into_iter().enumerate() {
        let journal = dir.join(format!("journal-{round}"));
        let mut child = replay()
            .args([
                full.to_str().unwrap(),
                "--journal-out",
                journal.to_str().unwrap(),
                "--segment-mb",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Parsing comes first; kill once journaling has begun.
        let first = journal.join("journal-00000000000000000001.seg");
        for _ in 0..2_000 {
            if first.exists() || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL (or nothing, if it already finished)
        child.wait().unwrap();
        if !first.exists() {
            continue; // killed before the first record
        }
        // The journal's state is the state after its first last_seq commands:
        // sequence 1 defines the instrument, sequence s >= 2 is workload line s - 1.
        let recovered_book = dir.join(format!("recovered-{round}.txt"));
        let last_seq = book_after_journal(&journal, &recovered_book);
        if last_seq < 2 {
            continue;
        }
        let prefix = dir.join(format!("prefix-{round}.txt"));
        std::fs::write(&prefix, lines[..last_seq as usize - 1].join("\n") + "\n").unwrap();
        let expected_book = dir.join(format!("expected-{round}.txt"));
        let output = replay()
            .args([
                prefix.to_str().unwrap(),
                "--book",
                expected_book.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        let expected = format!(
            "I WORKLOAD\n{}",
            std::fs::read_to_string(&expected_book).unwrap()
        );
        assert_eq!(
            std::fs::read_to_string(&recovered_book).unwrap(),
            expected,
            "round {round}: killed after {delay_ms} ms, recovered to sequence {last_seq}"
        );
        eprintln!("round {round}: killed {delay_ms} ms into journaling, recovered to sequence {last_seq} of {}", lines.len() + 1);
        recovered_some += 1;
    }
    assert!(
        recovered_some >= 3,
        "only {recovered_some} rounds got far enough to check"
    );
    std::fs::remove_dir_all(dir).ok();
}
