//! Tag 15, an operator's action: the operator's name and the reason as
//! bincode 2 strings (a `u64` length, then UTF-8), then the inner command's
//! own payload, tag and all. The inner command may be anything but another
//! admin action.

use super::codec::{self, MAX_ENCODED};
use crate::command::{AdminCommand, Command};

/// Appends tag 15 and `admin` to `out`.
pub(super) fn encode(admin: &AdminCommand, out: &mut Vec<u8>) {
    out.push(15);
    bincode::encode_into_std_write(
        (&admin.operator, &admin.reason),
        out,
        tonnex_protocol::codec_config(),
    )
    .expect("writing to a Vec cannot fail");
    if codec::is_large(&admin.command) {
        let mut inner = Vec::new();
        codec::encode_large(&admin.command, &mut inner);
        out.extend_from_slice(&inner);
    } else {
        let mut inner = [0u8; MAX_ENCODED];
        let len = codec::encode(&admin.command, &mut inner);
        out.extend_from_slice(&inner[..len]);
    }
}

/// Decodes what follows tag 15.
pub(super) fn decode(payload: &[u8]) -> Result<Command, String> {
    let ((operator, reason), used): ((String, String), usize) =
        bincode::decode_from_slice(payload, codec::record_config())
            .map_err(|e| format!("admin command: {e}"))?;
    let inner = payload
        .get(used..)
        .filter(|rest| !rest.is_empty())
        .ok_or("admin command without its action")?;
    if inner[0] == 15 {
        return Err("an admin command inside an admin command".into());
    }
    let command = codec::decode(inner)?;
    Ok(Command::Admin(Box::new(AdminCommand {
        operator,
        reason,
        command,
    })))
}
