//! Message ids of `--nats-dedup msg-id`: `Nats-Msg-Id` names each record by
//! the agent, its input and its offset, the same in every run, so that the
//! stream's duplicate window drops a record sent again.

use crate::record::{FileId, Span};

/// Makes the message ids of a batch (see `message_id`): the part before
/// the offset is made once per input, not once per record.
pub(super) struct MessageIds<'a> {
    prefix: &'a str,
    file: Option<FileId>,
    head: String,
}

impl<'a> MessageIds<'a> {
    pub(super) fn new(prefix: &'a str) -> Self {
        Self {
            prefix,
            file: None,
            head: String::new(),
        }
    }

    pub(super) fn id(&mut self, at: &Span) -> String {
        if self.file != Some(at.file) {
            self.head = id_head(self.prefix, at.file);
            self.file = Some(at.file);
        }
        let mut id = String::with_capacity(self.head.len() + 20);
        id.push_str(&self.head);
        push_decimal(&mut id, at.start);
        id
    }
}

/// The message id of the record at `at`: the agent id, then which input
/// (a file's device, inode and truncation epoch, or `stdin`, whose offsets
/// count bytes of one stream that goes on across runs), then the record's
/// byte offset. Each part is stable across runs, so a record sent again
/// gets the id it had.
#[cfg(test)]
fn message_id(prefix: &str, at: &Span) -> String {
    MessageIds::new(prefix).id(at)
}

/// Everything of a message id before the record's offset.
fn id_head(prefix: &str, file: FileId) -> String {
    if file == FileId::STDIN {
        format!("{prefix}.stdin.")
    } else {
        format!("{prefix}.{:x}.{:x}.{}.", file.dev, file.ino, file.epoch)
    }
}

/// Appends `n` in decimal, without the formatting machinery (once per
/// message).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_a_batch_are_those_of_each_record_alone() {
        let at = |ino, start| Span {
            file: FileId {
                dev: 3,
                ino,
                epoch: 0,
            },
            start,
            end: start + 1,
        };
        let records = [at(9, 0), at(9, 10), at(7, 0), at(9, u64::MAX - 1), at(0, 5)];
        let mut ids = MessageIds::new("a1");
        let got: Vec<String> = records.iter().map(|r| ids.id(r)).collect();
        assert_eq!(
            got,
            [
                "a1.3.9.0.0",
                "a1.3.9.0.10",
                "a1.3.7.0.0",
                "a1.3.9.0.18446744073709551614",
                "a1.3.0.0.5"
            ]
        );
        for (r, id) in records.iter().zip(&got) {
            assert_eq!(&message_id("a1", r), id);
        }
    }

    #[test]
    fn message_ids_tell_apart_agents_files_epochs_offsets_and_stdin() {
        let at = |dev, ino, epoch, start| Span {
            file: FileId { dev, ino, epoch },
            start,
            end: start + 1,
        };
        assert_eq!(message_id("a1", &at(0x10, 0xff, 2, 7)), "a1.10.ff.2.7");
        // Standard input: the stream offset, the same in every run.
        assert_eq!(message_id("a1", &at(0, 0, 0, 7)), "a1.stdin.7");
        let ids = [
            message_id("a1", &at(1, 2, 0, 3)),
            message_id("a2", &at(1, 2, 0, 3)),
            message_id("a1", &at(1, 2, 1, 3)),
            message_id("a1", &at(1, 3, 0, 3)),
            message_id("a1", &at(1, 2, 0, 4)),
            message_id("a1", &at(0, 0, 0, 3)),
            message_id("a2", &at(0, 0, 0, 3)),
        ];
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
