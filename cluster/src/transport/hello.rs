//! The hello that opens every transport connection: the dialling node's
//! id and addresses, signed with the cluster key (see the module above).

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The largest hello (a connection declaring more before its hello is hung
/// up on: nobody without the key makes a node buffer more than this).
const MAX_HELLO: usize = 1024;

/// What a node tells each peer it dials, first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The dialling node's id.
    pub id: u64,
    /// Where its transport listens.
    pub listen: SocketAddr,
    /// Where its clients reach it (the venue's order entry), or empty;
    /// opaque to the transport.
    pub client: String,
}

const HELLO_MAGIC: &[u8; 8] = b"TNXHELO1";
/// Bytes of a hello's signature.
const PROOF: usize = 32;

fn signer(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

impl Hello {
    /// The hello's frame: length, then `TNXHELO1`, id u64 LE, the listen
    /// and client addresses (each a u16 LE length and UTF-8), and the
    /// HMAC-SHA-256 of all that under `key` (32 bytes).
    #[must_use]
    pub fn frame(&self, key: &[u8]) -> Vec<u8> {
        let listen = self.listen.to_string();
        let mut body = Vec::with_capacity(24 + listen.len() + self.client.len());
        body.extend_from_slice(HELLO_MAGIC);
        body.extend_from_slice(&self.id.to_le_bytes());
        for text in [listen.as_str(), self.client.as_str()] {
            let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
        }
        let mut mac = signer(key);
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    }

    /// A hello's payload (after its length), or None when it is not one
    /// signed with `key`.
    #[must_use]
    pub fn parse(payload: &[u8], key: &[u8]) -> Option<Hello> {
        let signed = payload.len().checked_sub(PROOF)?;
        let mut mac = signer(key);
        mac.update(&payload[..signed]);
        mac.verify_slice(&payload[signed..]).ok()?;
        let rest = payload[..signed].strip_prefix(HELLO_MAGIC)?;
        let id = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let mut rest = &rest[8..];
        let mut text = || -> Option<String> {
            let len = usize::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?));
            let bytes = rest.get(2..2 + len)?;
            rest = &rest[2 + len..];
            String::from_utf8(bytes.to_vec()).ok()
        };
        let listen = text()?.parse().ok()?;
        let client = text()?;
        (id != 0 && rest.is_empty()).then_some(Hello { id, listen, client })
    }
}

/// Takes the hello off the front of what was read, once it is whole:
/// `Ok(None)` while it is not, `Err` when it cannot be a hello signed
/// with `key`.
pub(super) fn take_hello(buf: &mut Vec<u8>, key: &[u8]) -> Result<Option<Hello>, ()> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(head.try_into().expect("4")) as usize;
    if len > MAX_HELLO {
        return Err(());
    }
    let Some(payload) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    let hello = Hello::parse(payload, key).ok_or(())?;
    buf.drain(..4 + len);
    Ok(Some(hello))
}
