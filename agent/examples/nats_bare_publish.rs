//! The bench's peer (`agent/bench_nats.sh`): the least a program does to put
//! a file's lines into JetStream with acknowledgements: one message per
//! line, published pipelined in batches of `BATCH`, every acknowledgement
//! of a batch awaited before the next batch starts.
//!
//!     nats_bare_publish FILE nats://HOST:PORT SUBJECT BATCH [STREAM [ids|hdr]]
//!
//! With STREAM, a stream of that name is created for SUBJECT first (not
//! timed). With `ids` after it, every message also carries a `Nats-Msg-Id`
//! header shaped like the agent's (agent id, device, inode, epoch, byte
//! offset), so that the server deduplicates as it does for the agent: the
//! bench shows what exactly-once costs the server apart from what the agent
//! costs. With `hdr`, the same value goes under a header the server does not
//! read (`Spw-Pos`): the bytes of the header without the deduplication, to
//! tell the two costs apart.

use std::io::BufRead;
use std::time::Instant;

use async_nats::jetstream;
use bytes::Bytes;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (file, url, subject, batch, stream, header) =
        match &args[..] {
            [_, f, u, s, b] => (f, u, s, b, None, None),
            [_, f, u, s, b, st] => (f, u, s, b, Some(st), None),
            [_, f, u, s, b, st, i] if i == "ids" => (f, u, s, b, Some(st), Some("Nats-Msg-Id")),
            [_, f, u, s, b, st, i] if i == "hdr" => (f, u, s, b, Some(st), Some("Spw-Pos")),
            _ => return Err(
                "usage: nats_bare_publish FILE nats://HOST:PORT SUBJECT BATCH [STREAM [ids|hdr]]"
                    .into(),
            ),
        };
    let batch: usize = batch.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await?;
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(batch + 1)
            .build(client);
        if let Some(name) = stream {
            js.get_or_create_stream(jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await?;
        }
        let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
        let started = Instant::now();
        let mut pending = Vec::with_capacity(batch);
        let mut n = 0u64;
        let mut offset = 0u64;
        for line in reader.split(b'\n') {
            let line = line?;
            let len = line.len() as u64 + 1;
            let ack = if let Some(name) = header {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(name, format!("0123456789abcdef.801.2a3b4c.0.{offset}"));
                let msg = jetstream::message::PublishMessage::build()
                    .payload(Bytes::from(line))
                    .headers(headers);
                js.send_publish(subject.clone(), msg).await?
            } else {
                js.publish(subject.clone(), Bytes::from(line)).await?
            };
            pending.push(ack);
            offset += len;
            n += 1;
            if pending.len() == batch {
                for ack in pending.drain(..) {
                    ack.await?;
                }
            }
        }
        for ack in pending.drain(..) {
            ack.await?;
        }
        eprintln!("published {n} messages in {:?}", started.elapsed());
        Ok(())
    })
}
