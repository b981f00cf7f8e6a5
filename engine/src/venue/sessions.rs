//! Each account's sequenced stream as a cluster's log records it
//! ([`crate::command::VenueCommand::Reports`]): the sequence space and the
//! number each account's next message gets. The messages themselves stay
//! outside the state (the gateway keeps them for replay); the numbers are
//! state, so a node that starts from a snapshot still goes on with them.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

/// Bytes before a record's frame: its length u32 and account u64.
const RECORD_HEAD: usize = 12;

/// The canonical form, in the state image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct SessionsImage {
    /// The sequence space (0: none recorded yet).
    pub session_id: u64,
    /// `(account, sequence number of its next message)`, by account.
    pub next_seqs: Vec<(u64, u64)>,
}

/// The streams' numbers (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    session_id: u64,
    next_seqs: BTreeMap<u64, u64>,
}

impl Sessions {
    /// Folds one `Reports` command. A new sequence space starts every
    /// account over; a record cut short ends the fold (the gateway wrote
    /// whole records, so that is damage, and every node stops at the same
    /// byte).
    pub fn fold(&mut self, session_id: u64, records: &[u8]) {
        if session_id != self.session_id {
            self.session_id = session_id;
            self.next_seqs.clear();
        }
        for (account, seq, _) in Records(records) {
            self.next_seqs.insert(account, seq + 1);
        }
    }

    /// The sequence space (0: none recorded).
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Every account's next sequence number, by account.
    pub fn next_seqs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.next_seqs.iter().map(|(&a, &s)| (a, s))
    }

    /// The canonical image.
    #[must_use]
    pub fn image(&self) -> SessionsImage {
        SessionsImage {
            session_id: self.session_id,
            next_seqs: self.next_seqs().collect(),
        }
    }

    /// Rebuilt from its image.
    #[must_use]
    pub fn from_image(image: &SessionsImage) -> Sessions {
        Sessions {
            session_id: image.session_id,
            next_seqs: image.next_seqs.iter().copied().collect(),
        }
    }
}

/// Outbound-log records (a `Reports` command's, or the log file's):
/// `(account, sequence number, frame)` each, in order, up to the first one
/// cut short; what is left unread stays in `.0`.
pub struct Records<'a>(pub &'a [u8]);

impl<'a> Iterator for Records<'a> {
    type Item = (u64, u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.0;
        let seq_at = tonnex_protocol::frame::HEADER_BYTES;
        if bytes.len() < RECORD_HEAD {
            return None;
        }
        let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        let account = u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes"));
        let end = RECORD_HEAD.checked_add(len)?;
        if len < seq_at + 8 || end > bytes.len() {
            // (Left where it is: the caller sees where the whole records end.)
            return None;
        }
        let frame = &bytes[RECORD_HEAD..end];
        let seq = u64::from_le_bytes(frame[seq_at..seq_at + 8].try_into().expect("8 bytes"));
        self.0 = &bytes[end..];
        Some((account, seq, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(account: u64, seq: u64) -> Vec<u8> {
        let mut frame = vec![0u8; tonnex_protocol::frame::HEADER_BYTES];
        frame.extend_from_slice(&seq.to_le_bytes());
        frame.extend_from_slice(b"body");
        let mut out = (frame.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&account.to_le_bytes());
        out.extend_from_slice(&frame);
        out
    }

    #[test]
    fn folds_each_accounts_last_number_and_restarts_with_a_new_space() {
        let mut sessions = Sessions::default();
        let mut records = record(7, 1);
        records.extend(record(9, 1));
        records.extend(record(7, 2));
        sessions.fold(55, &records);
        assert_eq!(sessions.session_id(), 55);
        assert_eq!(sessions.next_seqs().collect::<Vec<_>>(), [(7, 3), (9, 2)]);
        assert_eq!(Sessions::from_image(&sessions.image()), sessions);
        sessions.fold(56, &record(9, 1));
        assert_eq!(sessions.next_seqs().collect::<Vec<_>>(), [(9, 2)]);
    }

    #[test]
    fn a_record_cut_short_ends_the_fold() {
        let mut records = record(7, 1);
        let whole = records.len();
        records.extend(record(8, 4));
        records.truncate(whole + 10);
        let read: Vec<_> = Records(&records).map(|(a, s, _)| (a, s)).collect();
        assert_eq!(read, [(7, 1)]);
        // A length that claims more than the frame header and number is short too.
        let mut tiny = 4u32.to_le_bytes().to_vec();
        tiny.extend_from_slice(&1u64.to_le_bytes());
        tiny.extend_from_slice(&[0; 4]);
        assert_eq!(Records(&tiny).count(), 0);
    }
}
