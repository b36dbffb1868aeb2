//! NATS with the integration's inputs. In msg-id mode, what names a message
//! (`Nats-Msg-Id`): each file of a glob names its own file (device, inode),
//! and standard input names its stream offset, which is the same in every
//! run, so a batch that a later run sends again from the stdin spool is
//! dropped by the stream's duplicate window. In sequence mode, a later run
//! reads that batch back from the stream and does not send it again.
#![cfg(feature = "nats")]

mod common;
mod nats_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use nats_support::*;

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success(), "cp -a {} {}", from.display(), to.display());
}

#[test]
fn each_file_of_a_glob_names_its_own_file_in_the_message_ids() {
    let Some(bin) = server_or_skip("glob inputs into NATS") else {
        return;
    };
    let s = Scratch::new("nats-glob");
    let server = Server::start(&bin, &s.dir, "glob", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream("GLOB", "glob.lines", 1);
    let logs = s.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (a, b) = (logs.join("a.log"), logs.join("b.log"));
    generate(&a, 200);
    std::fs::File::create(&b).unwrap();
    append(&b, 1001, 1150);
    let pattern = logs.join("*.log");
    let out = ship(
        &pattern,
        &format!("nats://127.0.0.1:{}/glob.lines", server.port),
        &s.path("state"),
        Dedup::MsgId.flags(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));

    let got = client.read_all("GLOB");
    assert_eq!(got.len(), 350, "messages in the stream");
    let file_of = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        format!(".{:x}.{:x}.0.", m.dev(), m.ino())
    };
    let (in_a, in_b) = (file_of(&a), file_of(&b));
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    for (payload, id) in &got {
        let text = String::from_utf8_lossy(payload);
        let n: u64 = text[..10].parse().unwrap();
        if n <= 200 {
            assert!(
                id.contains(&in_a),
                "{text}: id {id} does not name a.log ({in_a})"
            );
            from_a.push(n);
        } else {
            assert!(
                id.contains(&in_b),
                "{text}: id {id} does not name b.log ({in_b})"
            );
            from_b.push(n);
        }
    }
    assert_eq!(from_a, (1..=200).collect::<Vec<_>>(), "a.log in order");
    assert_eq!(from_b, (1001..=1150).collect::<Vec<_>>(), "b.log in order");
    let ids: std::collections::HashSet<&String> = got.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), got.len(), "message ids are not distinct");
}

#[test]
fn stdin_sent_again_by_a_later_run_is_dropped_as_a_duplicate() {
    stdin_again(Dedup::MsgId);
}

#[test]
fn stdin_that_landed_unrecorded_is_read_back_and_not_sent_again() {
    stdin_again(Dedup::Sequence);
}

fn stdin_again(dedup: Dedup) {
    let Some(bin) = server_or_skip("stdin exactly once into NATS") else {
        return;
    };
    let s = Scratch::new(&format!("nats-stdin-again-{dedup:?}"));
    let mut server = Server::start(&bin, &s.dir, "again", &[]);
    let client = Client::connect(&[server.url()]);
    client.create_stream("AGAIN", "again.lines", 1);
    drop(client);
    let output = format!("nats://127.0.0.1:{}/again.lines", server.port);
    let config = config_file(
        &s,
        "buffer.yaml",
        "max_retries: 1\nretry_backoff: 50ms\nretry_backoff_max: 100ms\n",
    );
    let mut extra = vec!["--config", config.to_str().unwrap()];
    extra.extend_from_slice(dedup.flags());
    let state = s.path("state");

    // Run 1, the server down: stdin goes into the stdin spool, exit 1.
    server.stop();
    let out = ship_stdin(&output, &state, &extra, lines(1, 300));
    assert_eq!(code(out.status), 1, "{}", stderr(&out));
    // What a run killed after NATS stored the batch, before its checkpoint
    // write, leaves behind: this state directory.
    let before = s.path("state-before");
    copy_dir(&state, &before);

    // Run 2 delivers the spool.
    server.restart();
    let out = ship_stdin(&output, &state, &extra, Vec::new());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let client = Client::connect(&[server.url()]);
    assert_eq!(client.count("AGAIN"), Some(300));

    // Run 3 from the earlier state: msg-id mode sends the 300 again (same
    // stream offsets, same ids: all dropped); sequence mode reads them back
    // and sends none of them. Then new lines, which are stored.
    copy_dir(&before, &state);
    let out = ship_stdin(&output, &state, &extra, lines(301, 400));
    let err = stderr(&out);
    assert_eq!(code(out.status), 0, "{err}");
    let got = client.read_all("AGAIN");
    assert_exactly_once_in_order(&got, 400, line, dedup);
    match dedup {
        Dedup::MsgId => assert!(
            got.iter().all(|(_, id)| id.contains(".stdin.")),
            "{:?}",
            &got[..3]
        ),
        Dedup::Sequence => assert!(
            err.contains("300 records of subject again.lines had landed"),
            "{err}"
        ),
    }
}
