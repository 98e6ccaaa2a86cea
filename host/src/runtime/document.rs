//! A run's JSON report as the plugin hands it over: in parts
//! (`progress.write-report`) and then as `run`'s returned `json`. A sweep's
//! report is tens of megabytes; a caller that only writes it out gets each
//! part as it comes, so the host never holds a copy of the whole beside
//! the plugin's.

use std::sync::Arc;

use tokio::sync::Notify;

use super::RunError;

/// Where a run's JSON report goes.
pub enum ReportTo {
    /// Into [`super::Finished::output`], whole.
    Caller,
    /// To this sink, part by part; the finished run's report then has no
    /// `json`, as when a plugin streamed its results.
    Parts(Arc<dyn PartSink>),
}

/// Takes a report's parts as they come, to write them out.
pub trait PartSink: Send + Sync {
    /// Takes a part; never blocks.
    fn write(&self, part: String);
    /// Bytes taken and not yet written out: the plugin waits while there
    /// are more than [`MAX_REPORT_BACKLOG`](super::MAX_REPORT_BACKLOG), so
    /// that parts do not pile up in memory. A sink may hold parts back
    /// until the run ends, but never that many bytes: the plugin would
    /// wait for ever.
    fn backlog(&self) -> usize;
    /// Notified (`notify_one`) each time a part has been written out.
    fn written(&self) -> &Notify;
}

/// The report so far, within the run's output limit.
pub struct Document {
    to: ReportTo,
    /// The parts, for [`ReportTo::Caller`].
    kept: String,
    /// Bytes offered in parts; those past the limit were not taken.
    size: usize,
    limit: usize,
}

impl Document {
    /// An empty report going `to`, of at most `limit` bytes.
    pub fn new(to: ReportTo, limit: usize) -> Document {
        Document {
            to,
            kept: String::new(),
            size: 0,
            limit,
        }
    }

    /// Appends a part; past the limit nothing more is taken, and the run
    /// will fail (`Err` with the size the parts would reach).
    pub fn append(&mut self, part: String) -> Result<(), usize> {
        self.size = self.size.saturating_add(part.len());
        if self.size > self.limit {
            return Err(self.size);
        }
        match &self.to {
            ReportTo::Caller => self.kept.push_str(&part),
            ReportTo::Parts(sink) => sink.write(part),
        }
        Ok(())
    }

    /// Waits until at most `most` bytes of parts are not yet written out.
    pub async fn drained(&self, most: usize) {
        if let ReportTo::Parts(sink) = &self.to {
            while sink.backlog() > most {
                sink.written().notified().await;
            }
        }
    }

    /// The whole report, given the `json` that `run` returned: `None` when
    /// it went to a writer (the returned part too) or there is none.
    pub fn finish(mut self, json: Option<String>) -> Result<Option<String>, RunError> {
        let size = self
            .size
            .saturating_add(json.as_ref().map_or(0, String::len));
        if size > self.limit {
            return Err(RunError::OutputLimit(size, self.limit));
        }
        Ok(match (&self.to, json) {
            (ReportTo::Parts(sink), Some(json)) => {
                sink.write(json);
                None
            }
            (ReportTo::Parts(_), None) => None,
            (ReportTo::Caller, json) if self.size == 0 => json,
            (ReportTo::Caller, json) => {
                self.kept.push_str(json.as_deref().unwrap_or(""));
                Some(self.kept)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn parts_then_the_returned_json_make_the_report() {
        let mut doc = Document::new(ReportTo::Caller, 100);
        doc.append("[1,".into()).unwrap();
        doc.append("2,".into()).unwrap();
        assert_eq!(
            doc.finish(Some("3]".into())).unwrap().as_deref(),
            Some("[1,2,3]")
        );
        let doc = Document::new(ReportTo::Caller, 100);
        assert_eq!(doc.finish(None).unwrap(), None);
    }

    /// Keeps what it is given; all of it is "not yet written out".
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>, Notify);

    impl PartSink for Log {
        fn write(&self, part: String) {
            self.0.lock().unwrap().push(part);
        }

        fn backlog(&self) -> usize {
            self.0.lock().unwrap().iter().map(String::len).sum()
        }

        fn written(&self) -> &Notify {
            &self.1
        }
    }

    #[test]
    fn a_sink_gets_each_part_as_it_comes() {
        let seen = Arc::new(Log::default());
        let mut doc = Document::new(ReportTo::Parts(seen.clone()), 100);
        doc.append("[1,".into()).unwrap();
        assert_eq!(*seen.0.lock().unwrap(), ["[1,"]);
        assert_eq!(seen.backlog(), 3);
        assert_eq!(doc.finish(Some("2]".into())).unwrap(), None);
        assert_eq!(*seen.0.lock().unwrap(), ["[1,", "2]"]);
    }

    #[test]
    fn past_the_limit_nothing_more_is_taken_and_the_run_fails() {
        let mut doc = Document::new(ReportTo::Caller, 5);
        doc.append("[1,2".into()).unwrap();
        assert_eq!(doc.append(",3".into()), Err(6));
        assert_eq!(doc.append("]".into()), Err(7));
        assert!(matches!(doc.finish(None), Err(RunError::OutputLimit(7, 5))));
        // The returned part counts too.
        let mut doc = Document::new(ReportTo::Caller, 5);
        doc.append("[1,".into()).unwrap();
        assert!(matches!(
            doc.finish(Some("2,3]".into())),
            Err(RunError::OutputLimit(7, 5))
        ));
    }
}
