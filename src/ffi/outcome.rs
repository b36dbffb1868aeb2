//! What a buffer call returns to C: the status and message of each outcome
//! of building, inserting, `sync_flush` and close.

use crate::buffer::{BufferError, CloseReport, FlushReport, InsertError, SyncFlushError};
use crate::config::{BufferConfig, Overflow};
use crate::engine::EngineError;

use super::error::Error;
use super::status::spw_status;

/// The status of a buffer that could not be built.
pub(crate) fn build_error(e: &BufferError) -> Error {
    let status = match e {
        BufferError::Engine(EngineError::Spawn(_)) | BufferError::Spool { .. } => {
            spw_status::SPW_ERR_IO
        }
        _ => spw_status::SPW_ERR_INVALID,
    };
    Error::new(status, e.to_string())
}

/// The status of a refused insert.
pub(crate) fn insert_error<T>(e: &InsertError<T>, cfg: &BufferConfig) -> Error {
    match e {
        InsertError::Full(_) => {
            let counted = match cfg.overflow {
                Overflow::DropNewest => "; the item is counted as inserted and dropped",
                _ => "",
            };
            let bytes = match cfg.capacity_bytes {
                0 => String::new(),
                n => format!(" or capacity_bytes {n}B"),
            };
            Error::new(
                spw_status::SPW_ERR_FULL,
                format!(
                    "buffer partition is full (capacity {}{bytes}, overflow {}){counted}",
                    cfg.capacity, cfg.overflow
                ),
            )
        }
        InsertError::Timeout(_) => Error::new(
            spw_status::SPW_ERR_TIMEOUT,
            format!(
                "buffer partition stayed full for block_timeout ({} ms)",
                cfg.block_timeout.as_millis()
            ),
        ),
        InsertError::Closed(_) => Error::closed("buffer is closed"),
    }
}

/// The status of `sync_flush`: OK only when everything buffered at the call
/// reached the callback.
pub(crate) fn sync_flush_result(
    result: Result<FlushReport, SyncFlushError>,
    timeout_ms: u64,
) -> Result<(), Error> {
    match result {
        Ok(report) if report.all_delivered() => Ok(()),
        Ok(report) => {
            let lost = report.dropped() + report.dumped() + report.undelivered();
            let spooled = report.spooled();
            let kept = if spooled > 0 {
                format!("; {spooled} more were kept in the spool for the next run")
            } else {
                String::new()
            };
            Err(Error::new(
                spw_status::SPW_ERR_SINK,
                format!(
                    "{lost} of the {} items buffered at the call were given up \
                     (the callback failed after retries, or overflow drop_oldest evicted them){kept}",
                    report.delivered() + lost + spooled
                ),
            ))
        }
        Err(SyncFlushError::Timeout(report)) => Err(Error::new(
            spw_status::SPW_ERR_TIMEOUT,
            format!(
                "{} items buffered at the call were still undelivered after {timeout_ms} ms",
                report.undelivered()
            ),
        )),
        Err(SyncFlushError::Closed) => Err(Error::closed("buffer is closed")),
        Err(e @ SyncFlushError::InsideSink) => Err(Error::invalid(e.to_string())),
    }
}

/// The status of `close`: OK only when everything buffered at close reached
/// the callback in time, or is in the spool and known durable.
pub(crate) fn close_result(report: &CloseReport) -> Result<(), Error> {
    if report.timed_out || report.running_calls > 0 {
        Err(Error::new(
            spw_status::SPW_ERR_TIMEOUT,
            format!(
                "closed, but {} items were still undelivered and {} callbacks still running \
                 when the timeout passed",
                report.undelivered, report.running_calls
            ),
        ))
    } else if report.dropped > 0 {
        Err(Error::new(
            spw_status::SPW_ERR_SINK,
            format!(
                "closed, but {} items buffered at close were given up (the callback failed \
                 after retries)",
                report.dropped
            ),
        ))
    } else if report.not_durable > 0 {
        Err(Error::new(
            spw_status::SPW_ERR_IO,
            format!(
                "closed, but {} items are only in memory, lost when the process ends: the \
                 spool could not make them durable (each failure was an SPW_EVENT_SPOOL_ERROR)",
                report.not_durable
            ),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PartitionFlush;
    use std::time::Duration;

    fn part(delivered: u64, dropped: u64, undelivered: u64) -> PartitionFlush {
        PartitionFlush {
            partition: 0,
            delivered,
            dropped,
            dumped: 0,
            spooled: 0,
            undelivered,
        }
    }

    #[test]
    fn insert_errors_map_to_their_statuses() {
        let cfg = BufferConfig::new()
            .capacity(4)
            .max_size(2)
            .overflow(Overflow::Reject)
            .block_timeout(Duration::from_millis(250));
        let e = insert_error(&InsertError::Full(()), &cfg);
        assert_eq!(e.status(), spw_status::SPW_ERR_FULL);
        assert_eq!(
            e.detail(),
            "buffer partition is full (capacity 4, overflow reject)"
        );
        let e = insert_error(
            &InsertError::Full(()),
            &cfg.clone().overflow(Overflow::DropNewest),
        );
        assert_eq!(e.status(), spw_status::SPW_ERR_FULL);
        assert!(
            e.detail().ends_with("counted as inserted and dropped"),
            "{}",
            e.detail()
        );
        let e = insert_error(&InsertError::Timeout(()), &cfg);
        assert_eq!(e.status(), spw_status::SPW_ERR_TIMEOUT);
        assert_eq!(
            e.detail(),
            "buffer partition stayed full for block_timeout (250 ms)"
        );
        let e = insert_error(&InsertError::Closed(()), &cfg);
        assert_eq!(
            (e.status(), e.detail()),
            (spw_status::SPW_ERR_CLOSED, "buffer is closed")
        );
    }

    #[test]
    fn sync_flush_is_ok_only_when_all_was_delivered() {
        let report = |parts| FlushReport { partitions: parts };
        assert_eq!(sync_flush_result(Ok(report(vec![])), 5), Ok(()));
        assert_eq!(
            sync_flush_result(Ok(report(vec![part(3, 0, 0)])), 5),
            Ok(())
        );

        let e = sync_flush_result(Ok(report(vec![part(3, 2, 0), part(1, 0, 0)])), 5).unwrap_err();
        assert_eq!(e.status(), spw_status::SPW_ERR_SINK);
        assert!(e.detail().starts_with("2 of the 6 items"), "{}", e.detail());

        let e = sync_flush_result(Err(SyncFlushError::Timeout(report(vec![part(1, 0, 4)]))), 5)
            .unwrap_err();
        assert_eq!(e.status(), spw_status::SPW_ERR_TIMEOUT);
        assert_eq!(
            e.detail(),
            "4 items buffered at the call were still undelivered after 5 ms"
        );
        let e = sync_flush_result(Err(SyncFlushError::Closed), 5).unwrap_err();
        assert_eq!(e.status(), spw_status::SPW_ERR_CLOSED);
    }

    #[test]
    fn close_is_ok_only_when_all_was_delivered_in_time() {
        let ok = CloseReport {
            delivered: 5,
            ..CloseReport::default()
        };
        assert_eq!(close_result(&ok), Ok(()));
        let dropped = CloseReport {
            dropped: 2,
            ..ok.clone()
        };
        assert_eq!(
            close_result(&dropped).unwrap_err().status(),
            spw_status::SPW_ERR_SINK
        );
        let not_durable = CloseReport {
            spooled: 3,
            not_durable: 2,
            ..ok.clone()
        };
        let e = close_result(&not_durable).unwrap_err();
        assert_eq!(e.status(), spw_status::SPW_ERR_IO);
        assert!(
            e.detail()
                .starts_with("closed, but 2 items are only in memory"),
            "{}",
            e.detail()
        );
        let late = CloseReport {
            undelivered: 1,
            timed_out: true,
            not_durable: 1,
            ..dropped
        };
        let e = close_result(&late).unwrap_err();
        assert_eq!(e.status(), spw_status::SPW_ERR_TIMEOUT);
        assert!(e.detail().contains("1 items"), "{}", e.detail());
    }

    #[test]
    fn build_errors_name_the_problem() {
        let bad = BufferConfig::new().max_size(10).capacity(5);
        let e = build_error(&BufferError::Config(bad.validate().unwrap_err()));
        assert_eq!(e.status(), spw_status::SPW_ERR_INVALID);
        assert!(e.detail().contains("`capacity`"), "{}", e.detail());
        let e = build_error(&BufferError::Engine(EngineError::Spawn(
            std::io::Error::other("no threads"),
        )));
        assert_eq!(e.status(), spw_status::SPW_ERR_IO);
    }
}
