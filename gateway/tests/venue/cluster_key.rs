//! A cluster node fails closed: without a `[cluster] key` of its own in the
//! venue file it does not start (its Raft port would take entries from
//! anyone), and a bad key is named where it is read.

use std::process::Command;

use crate::harness::{scratch, QUICK};

/// `tonnex-venue run --node 1` on `venue_file`: exit code and stderr.
fn node_on(name: &str, edit: impl Fn(&str) -> String) -> (Option<i32>, String) {
    let dir = scratch(name, QUICK);
    let text = std::fs::read_to_string(dir.join("venue.toml")).unwrap();
    assert!(
        text.contains("[cluster]"),
        "the demo file has a cluster key"
    );
    std::fs::write(dir.join("venue.toml"), edit(&text)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tonnex-venue"))
        .args(["run", "--config"])
        .arg(dir.join("venue.toml"))
        .args(["--node", "1", "--peers", "1@127.0.0.1:0"])
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_cluster_node_without_a_key_of_its_own_does_not_start() {
    let (code, stderr) = node_on("cluster-no-key", |text| {
        let start = text.find("[cluster]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    });
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("venue.toml: [cluster] key: a cluster node needs the key"),
        "{stderr}"
    );

    let (code, stderr) = node_on("cluster-short-key", |text| {
        text.replace(
            "key = \"demo-cluster-key-not-for-production\"",
            "key = \"short\"",
        )
    });
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("cluster.key: 5 bytes: a cluster key has at least 16"),
        "{stderr}"
    );

    let (code, stderr) = node_on("cluster-bad-field", |text| {
        text.replace("[cluster]\n", "[cluster]\nsecret = \"x\"\n")
    });
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("cluster.secret: not a cluster field (key)"),
        "{stderr}"
    );
}
