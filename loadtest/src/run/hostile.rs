//! Deliberately broken clients kept open during a run: the venue must
//! refuse each and keep serving everyone else.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Poll, Token};

use crate::report::Report;

pub(super) struct Hostile {
    pub(super) stream: TcpStream,
    pub(super) kind: usize,
}

pub(super) const HOSTILE_BASE: usize = 1 << 20;

/// Opens, feeds or replaces hostile connection `slot`.
pub(super) fn be_hostile(
    hostiles: &mut [Option<Hostile>],
    slot: usize,
    address: SocketAddr,
    poll: &Poll,
    report: &mut Report,
) {
    match &mut hostiles[slot] {
        None => {
            let Ok(mut stream) = TcpStream::connect(address) else {
                return;
            };
            if poll
                .registry()
                .register(&mut stream, Token(HOSTILE_BASE + slot), Interest::READABLE)
                .is_err()
            {
                return;
            }
            report.hostile_connections += 1;
            hostiles[slot] = Some(Hostile {
                stream,
                kind: (report.hostile_connections as usize) % 4,
            });
        }
        Some(hostile) => {
            let bytes: &[u8] = match hostile.kind {
                // Random-looking bytes.
                0 => &[
                    0x17, 0, 0, 0, 0x99, 0x42, 0x13, 0x37, 0xfe, 0xed, 0xfa, 0xce, 0x01,
                ],
                // An absurd length prefix.
                1 => &[0xff, 0xff, 0xff, 0x7f, 0, 0],
                // A truncated frame, never completed.
                2 => &[0x40, 0, 0, 0, 3, 0, 0],
                // Silent: a half-open socket that never speaks.
                _ => &[],
            };
            if !bytes.is_empty() {
                let _ = hostile.stream.write(bytes);
                hostile.kind = 3; // then fall silent
            }
        }
    }
}

/// Reads (and discards) what the venue says to a hostile connection;
/// forgets it once the venue has closed it.
pub(super) fn drain_hostile(hostiles: &mut [Option<Hostile>], slot: usize) {
    let Some(Some(hostile)) = hostiles.get_mut(slot) else {
        return;
    };
    let mut chunk = [0u8; 4096];
    let gone = loop {
        match hostile.stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    if gone {
        hostiles[slot] = None;
    }
}
