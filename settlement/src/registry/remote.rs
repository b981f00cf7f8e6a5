//! The HTTP registry adapter: `POST /submit` with the requests of
//! `docs/registry-openapi.yaml` and `POST /status` for the outcomes a
//! bridge holds (a bridge that cannot call back is polled).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{
    now_ms, parse_request, sign, ContractError, IncomingTransfer, Registry, RegistryAccounts,
    RegistryError, RegistryEvent, Request, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// POSTs `body` to `http://addr/path`, signed when `secret` is given;
/// returns the status code.
pub fn post(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    secret: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), RegistryError> {
    let unreachable = |why: String| RegistryError::Unreachable {
        addr: addr.to_string(),
        why,
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| unreachable(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| unreachable(e.to_string()))?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(secret) = secret {
        let timestamp = now_ms();
        head.push_str(&format!(
            "{TIMESTAMP_HEADER}: {timestamp}\r\n{SIGNATURE_HEADER}: {}\r\n",
            sign(secret, timestamp, body)
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| unreachable(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| unreachable(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unreachable("no HTTP status in the answer".into()))?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    Ok((status, response[body_at..].to_vec()))
}

/// A registry reached over HTTP (`tonnex-settlement registry-sim`, or a
/// bridge to a real registry implementing `docs/registry-openapi.yaml`).
pub struct Remote {
    /// Its address.
    pub addr: SocketAddr,
    /// Each venue account's accounts at the registry and payment rail.
    pub accounts: RegistryAccounts,
}

/// Parses a `POST /submit` body: every request complete for its kind
/// (`parse_request`), else the first that is not, by index and field.
pub fn parse_requests(body: &[u8]) -> Result<Vec<Request>, ContractError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ContractError(e.to_string()))?;
    value
        .as_array()
        .ok_or("expected an array of requests")?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            parse_request(r)
                .map(|(request, _, _)| request)
                .map_err(|e| ContractError(format!("request {i}: {e}")))
        })
        .collect()
}

impl Registry for Remote {
    fn submit(&mut self, requests: &[Request]) -> Result<(), RegistryError> {
        // A request the contract cannot carry (an account without its
        // registry account) is left out and named; the trade then times
        // out and unwinds.
        let mut unsendable = Vec::new();
        let mut bodies = Vec::with_capacity(requests.len());
        for request in requests {
            match request.to_json(&self.accounts) {
                Ok(json) => bodies.push(json),
                Err(e) => unsendable.push(format!(
                    "trade {} {}: {e}",
                    request.trade_id,
                    request.kind.as_str()
                )),
            }
        }
        for chunk in bodies.chunks(5000) {
            let body = serde_json::Value::Array(chunk.to_vec()).to_string();
            let (status, answer) = post(self.addr, "/submit", body.as_bytes(), None)?;
            if status != 200 {
                return Err(RegistryError::Answered {
                    addr: self.addr.to_string(),
                    endpoint: "/submit",
                    status,
                    body: String::from_utf8_lossy(&answer).into_owned(),
                });
            }
        }
        match unsendable.first() {
            None => Ok(()),
            Some(first) => Err(RegistryError::Contract(ContractError(format!(
                "{} requests not sent, first: {first}",
                unsendable.len()
            )))),
        }
    }

    fn status(&mut self, trade_ids: &[u64]) -> Result<Vec<RegistryEvent>, RegistryError> {
        let body =
            serde_json::Value::Array(trade_ids.iter().map(|&t| t.into()).collect()).to_string();
        let (status, answer) = post(self.addr, "/status", body.as_bytes(), None)?;
        if status != 200 {
            return Err(RegistryError::Answered {
                addr: self.addr.to_string(),
                endpoint: "/status",
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| ContractError(e.to_string()))?;
        let events = value
            .as_array()
            .ok_or(ContractError::from("status: expected an array"))?
            .iter()
            .map(RegistryEvent::from_json)
            .collect::<Result<_, _>>()?;
        Ok(events)
    }

    fn incoming(&mut self, after: u64) -> Result<Vec<IncomingTransfer>, RegistryError> {
        let body = serde_json::json!({ "after": after }).to_string();
        let (status, answer) = post(self.addr, "/custody/incoming", body.as_bytes(), None)?;
        if status != 200 {
            return Err(RegistryError::Answered {
                addr: self.addr.to_string(),
                endpoint: "/custody/incoming",
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|e| ContractError(e.to_string()))?;
        let transfers = value
            .as_array()
            .ok_or(ContractError::from("custody/incoming: expected an array"))?
            .iter()
            .enumerate()
            .map(|(i, t)| {
                IncomingTransfer::from_json(t)
                    .map_err(|e| ContractError(format!("custody/incoming entry {i}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(transfers)
    }
}
