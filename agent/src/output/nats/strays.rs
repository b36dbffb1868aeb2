//! Sequence mode: the messages a failed batch left on the subject after one
//! the stream refused, removed before the subject is read back (see the
//! NATS output's module doc), and kept in the checkpoint while they cannot
//! be.

use std::time::Instant;

use super::{error_chain, publish, NatsOutput, CONNECT_TIMEOUT};
use crate::entries::Strays;
use crate::state::Group;

/// Messages the stream stored after one it refused, not removed yet.
#[derive(Debug)]
pub(super) enum Unremoved {
    /// Found by this run: the refused batch, whose acknowledged prefix
    /// counts as delivered once they are removed.
    Run(publish::Refusal),
    /// Found in the checkpoint at start: that prefix is read back once
    /// they are removed.
    Restored(Strays),
}

impl Unremoved {
    fn sequences(&self) -> &[u64] {
        match self {
            Self::Run(r) => &r.strays,
            Self::Restored(s) => &s.sequences,
        }
    }
}

impl NatsOutput {
    /// Sequence mode: removes from the stream the messages of a failed
    /// batch that were stored after one the stream refused (see
    /// [`publish::guarded`]), so that the subject holds a prefix of the
    /// segment, as its manifest maps it. Returns the batch's error, with
    /// what became of them.
    ///
    /// Once they are removed, the acknowledged messages before the refused
    /// one count as delivered, as a read-back would have found them, but
    /// without one: a server may no longer find the subject's last message
    /// once the messages after it were deleted (nats-server 2.9.10 answers
    /// "no message found" for the subject until a message is stored on it
    /// again), and a read-back would then find nothing and let them be
    /// sent again.
    pub(super) fn remove_strays(
        &mut self,
        refusal: publish::Refusal,
        error: String,
        deadline: Instant,
    ) -> String {
        let n = refusal.strays.len();
        match self.delete_messages(&refusal.strays, deadline) {
            Ok(()) => {
                let text = format!(
                    "{error}; {n} later messages of the batch that the stream had stored were \
                     removed (they are sent again after it), the {} before it count as delivered",
                    refusal.acked.messages
                );
                self.account_prefix(refusal.acked);
                text
            }
            Err(why) => {
                let mut text = format!(
                    "{error}; {n} later messages of the batch that the stream stored after it \
                     could not be removed ({why}): subject {} is not read back, nor anything \
                     sent, until they are",
                    self.spec.subject
                );
                // Recorded now, not with the next delivered batch: there is
                // none until they are removed, and a restart must not read
                // them back.
                let mut group = Group::default();
                let strays = self.strays_of(&refusal);
                let at = self.recorded.get();
                self.names
                    .add_with_strays(&mut group, (at.sequence, at.segment), Some(&strays));
                if let Err(e) = self.writer.commit(group) {
                    text.push_str(&format!(" (and the checkpoint could not record them: {e})"));
                }
                self.unremoved = Some(Unremoved::Run(refusal));
                text
            }
        }
    }

    /// Sequence mode: removes the messages a failed batch left after one
    /// the stream refused, which could not be removed then. Until they are,
    /// the subject is not read back: its manifest would map them to the
    /// records after the refused one (a record lost, the checkpoint moved
    /// into the middle of a line).
    ///
    /// Strays found in the checkpoint at start come without the records
    /// acknowledged before the refused one: once they are removed, those are
    /// read back, up to the last of them (`floor`) whatever the server says
    /// the subject's last message is (see
    /// [`remove_strays`](Self::remove_strays)). The next checkpoint write
    /// (the read-back's, or the next batch's) clears them.
    pub(super) fn remove_unremoved(&mut self, deadline: Instant) -> Result<(), String> {
        let Some(unremoved) = self.unremoved.take() else {
            return Ok(());
        };
        match self.delete_messages(unremoved.sequences(), deadline) {
            Ok(()) => {
                match unremoved {
                    Unremoved::Run(refusal) => self.account_prefix(refusal.acked),
                    Unremoved::Restored(strays) => {
                        self.floor = strays.after;
                        self.doubt = true;
                    }
                }
                Ok(())
            }
            Err(why) => {
                let stream = self.stream.as_deref().unwrap_or("?");
                let text = format!(
                    "{} messages that stream {stream} stored on subject {} after one it refused \
                     are still there ({why}): the agent needs to delete them \
                     ($JS.API.STREAM.MSG.DELETE.{stream}) before it reads the subject back",
                    unremoved.sequences().len(),
                    self.spec.subject
                );
                self.unremoved = Some(unremoved);
                Err(text)
            }
        }
    }

    /// Deletes messages `seqs` from the stream.
    fn delete_messages(&self, seqs: &[u64], deadline: Instant) -> Result<(), String> {
        let (Some(conn), Some(stream)) = (&self.conn, &self.stream) else {
            return Err("not connected".into());
        };
        let until = tokio::time::Instant::from_std(deadline.max(Instant::now() + CONNECT_TIMEOUT));
        let work = async {
            let s = conn
                .js
                .get_stream_no_info(stream)
                .await
                .map_err(|e| error_chain(&e))?;
            for &seq in seqs {
                match s.delete_message(seq).await {
                    Ok(_) => {}
                    // Removed already: by a run that stopped before its
                    // checkpoint said so.
                    Err(e) if no_message_found(&e) => {}
                    Err(e) => return Err(error_chain(&e)),
                }
            }
            Ok::<_, String>(())
        };
        conn.rt
            .block_on(async { tokio::time::timeout_at(until, work).await })
            .unwrap_or_else(|_| Err("timed out".into()))
    }

    /// What the checkpoint keeps of a refused batch's unremoved strays.
    pub(super) fn strays_of(&self, refusal: &publish::Refusal) -> Strays {
        Strays {
            after: refusal.acked.known.sequence.max(self.known.sequence),
            sequences: refusal.strays.clone(),
        }
    }
}

/// Whether a message deletion failed because there is no such message.
fn no_message_found(e: &async_nats::jetstream::stream::DeleteMessageError) -> bool {
    use async_nats::jetstream::stream::DeleteMessageErrorKind;
    matches!(e.kind(), DeleteMessageErrorKind::JetStream(j)
        if j.error_code() == async_nats::jetstream::ErrorCode::NO_MESSAGE_FOUND)
}
