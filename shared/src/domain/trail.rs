//! The HubSpot status trail of one handoff: each step's state and HubSpot id, recorded as soon as
//! it exists, and the last error with its time. A retry resumes at the first unfinished step, and
//! "the ticket is missing" or "the contact is not linked" is answered from this one record.

use serde::{Deserialize, Serialize};

/// Where the handoff's delivery to HubSpot stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrailStatus {
    /// Not started, or a run is under way.
    #[default]
    InProgress,
    /// A run failed in a way a retry may fix; the stream (or a replay) will run it again.
    Retrying,
    /// HubSpot refused the handoff (validation, configuration); retrying the same request will
    /// not help. `baton-local hubspot-replay` runs it again once the cause is fixed.
    Parked,
    /// Ticket, files and note exist.
    Done,
}

impl TrailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Retrying => "retrying",
            Self::Parked => "parked",
            Self::Done => "done",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    #[default]
    Pending,
    Done,
    /// Nothing to do (the contact, when WhatsApp gave neither number nor user id).
    Skipped,
}

/// One step: its state, the HubSpot id once known, how it was reached and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub state: StepState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// How the step ended: `found_by_whatsapp_id`, `found_by_search`, `created`, `conflict`
    /// (another writer made it first), `found_after_timeout`, `found_on_retry` (an earlier run
    /// made it), `uploaded`, or why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
}

impl Step {
    pub fn is_finished(&self) -> bool {
        matches!(self.state, StepState::Done | StepState::Skipped)
    }

    pub fn done(id: impl Into<String>, how: &str, at_ms: i64) -> Self {
        Self {
            state: StepState::Done,
            id: Some(id.into()),
            how: Some(how.to_owned()),
            at_ms: Some(at_ms),
        }
    }

    pub fn skipped(why: &str, at_ms: i64) -> Self {
        Self {
            state: StepState::Skipped,
            id: None,
            how: Some(why.to_owned()),
            at_ms: Some(at_ms),
        }
    }
}

/// A customer file's upload to HubSpot Files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStep {
    /// The message the file came with, or `transcript` for the full transcript.
    pub source: String,
    #[serde(flatten)]
    pub step: Step,
}

/// The last failure, as HubSpot (or the network) reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailError {
    /// `setup`, `contact`, `ticket`, `files`, `note`; or `store`, `storage` (the media bucket,
    /// the outbox).
    pub step: String,
    pub message: String,
    /// The HTTP status, when HubSpot answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// HubSpot's `correlationId`, to quote to HubSpot support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub retryable: bool,
    pub at_ms: i64,
}

/// The whole trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubspotTrail {
    pub status: TrailStatus,
    pub contact: Step,
    pub ticket: Step,
    pub files: Vec<FileStep>,
    pub note: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TrailError>,
    /// How many runs have worked on it.
    pub runs: u32,
    pub updated_at_ms: i64,
    /// Who owns the WhatsApp thread now, as the handoff and its ticket events moved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<super::ThreadOwner>,
}

impl HubspotTrail {
    pub fn file(&self, source: &str) -> Option<&Step> {
        self.files
            .iter()
            .find(|f| f.source == source)
            .map(|f| &f.step)
    }

    pub fn set_file(&mut self, source: &str, step: Step) {
        match self.files.iter_mut().find(|f| f.source == source) {
            Some(f) => f.step = step,
            None => self.files.push(FileStep {
                source: source.to_owned(),
                step,
            }),
        }
    }

    /// The HubSpot file ids uploaded so far, in upload order.
    pub fn file_ids(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|f| f.step.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_kept_once_per_source_in_order() {
        let mut t = HubspotTrail::default();
        t.set_file("wamid.a", Step::skipped("not yet", 1));
        t.set_file("wamid.b", Step::done("20", "uploaded", 2));
        t.set_file("wamid.a", Step::done("10", "uploaded", 3));
        assert_eq!(t.file_ids(), ["10", "20"]);
        assert_eq!(t.file("wamid.a").unwrap().state, StepState::Done);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<HubspotTrail>(&json).unwrap(), t);
    }
}
