//! Any bytes a peer can send: splitting frames and decoding every message
//! type must return an error or a message, never panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tonnex_protocol::frame;
use tonnex_protocol::wire::{ClientMessage, Sequenced, StreamRecord, StreamSubscribe};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((payload, used))) = frame::split(rest, frame::DEFAULT_MAX_FRAME_BYTES) {
        let _ = frame::decode::<ClientMessage>(payload);
        let _ = frame::decode::<StreamSubscribe>(payload);
        rest = &rest[used..];
    }
    let _ = frame::decode::<Sequenced>(data);
    let _ = frame::decode::<StreamRecord>(data);
});
