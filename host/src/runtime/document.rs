//! A run's JSON report as the plugin hands it over: in parts
//! (`progress.write-report`) and then as `run`'s returned `json`. A sweep's
//! report is tens of megabytes; a caller that only writes it out gets each
//! part as it comes, so the host never holds a copy of the whole beside
//! the plugin's.

use super::RunError;

/// Where a run's JSON report goes.
pub enum ReportTo {
    /// Into [`super::Finished::output`], whole.
    Caller,
    /// To this function, part by part; the finished run's report then has
    /// no `json`, as when a plugin streamed its results.
    Writer(Box<dyn FnMut(&str) + Send>),
}

/// The report so far, within the run's output limit.
pub struct Document {
    to: ReportTo,
    /// The parts, for [`ReportTo::Caller`].
    kept: String,
    /// Bytes handed over in parts.
    size: usize,
    limit: usize,
    /// The size the parts reached when they passed the limit.
    overflow: Option<usize>,
}

impl Document {
    /// An empty report going `to`, of at most `limit` bytes.
    pub fn new(to: ReportTo, limit: usize) -> Document {
        Document {
            to,
            kept: String::new(),
            size: 0,
            limit,
            overflow: None,
        }
    }

    /// Appends a part; past the limit nothing more is taken, and the run
    /// will fail (`Err` with the size the parts would reach).
    pub fn append(&mut self, part: &str) -> Result<(), usize> {
        let size = self.size.saturating_add(part.len());
        if self.overflow.is_some() || size > self.limit {
            let size = self.overflow.map_or(size, |s| s.saturating_add(part.len()));
            self.overflow = Some(size);
            return Err(size);
        }
        self.size = size;
        match &mut self.to {
            ReportTo::Caller => self.kept.push_str(part),
            ReportTo::Writer(write) => write(part),
        }
        Ok(())
    }

    /// The whole report, given the `json` that `run` returned: `None` when
    /// it went to a writer (the returned part too) or there is none.
    pub fn finish(mut self, json: Option<String>) -> Result<Option<String>, RunError> {
        let size = self
            .size
            .saturating_add(json.as_ref().map_or(0, String::len));
        if let Some(size) = self.overflow.or((size > self.limit).then_some(size)) {
            return Err(RunError::OutputLimit(size, self.limit));
        }
        Ok(match (&mut self.to, json) {
            (ReportTo::Writer(write), Some(json)) => {
                write(&json);
                None
            }
            (ReportTo::Writer(_), None) => None,
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
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn parts_then_the_returned_json_make_the_report() {
        let mut doc = Document::new(ReportTo::Caller, 100);
        doc.append("[1,").unwrap();
        doc.append("2,").unwrap();
        assert_eq!(
            doc.finish(Some("3]".into())).unwrap().as_deref(),
            Some("[1,2,3]")
        );
        let doc = Document::new(ReportTo::Caller, 100);
        assert_eq!(doc.finish(None).unwrap(), None);
    }

    #[test]
    fn a_writer_gets_each_part_as_it_comes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let to = ReportTo::Writer(Box::new(move |p: &str| {
            log.lock().unwrap().push(p.to_owned())
        }));
        let mut doc = Document::new(to, 100);
        doc.append("[1,").unwrap();
        assert_eq!(*seen.lock().unwrap(), ["[1,"]);
        assert_eq!(doc.finish(Some("2]".into())).unwrap(), None);
        assert_eq!(*seen.lock().unwrap(), ["[1,", "2]"]);
    }

    #[test]
    fn past_the_limit_nothing_more_is_taken_and_the_run_fails() {
        let mut doc = Document::new(ReportTo::Caller, 5);
        doc.append("[1,2").unwrap();
        assert_eq!(doc.append(",3"), Err(6));
        assert_eq!(doc.append("]"), Err(7));
        assert!(matches!(doc.finish(None), Err(RunError::OutputLimit(7, 5))));
        // The returned part counts too.
        let mut doc = Document::new(ReportTo::Caller, 5);
        doc.append("[1,").unwrap();
        assert!(matches!(
            doc.finish(Some("2,3]".into())),
            Err(RunError::OutputLimit(7, 5))
        ));
    }
}
