//! A request a registry (or payment rail) can act on, as the adapter
//! contract (`docs/registry-openapi.yaml`) carries it: the serial blocks
//! with their registry, project and vintage, the source and destination
//! accounts at the registry (configured per venue account), the
//! beneficiary, the retirement's reason and use, and an idempotency key.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use super::{ContractError, Kind};

/// The `--registry-accounts` file is wrong: the message names the file,
/// line and field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccountsFileError(pub String);

/// One run of consecutive serials a trade delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialRange {
    /// Registry name (Verra, Gold Standard, ...).
    pub registry: String,
    /// Project id at the registry.
    pub project_id: String,
    /// First serial.
    pub serial_start: String,
    /// Last serial.
    pub serial_end: String,
    /// Vintage year.
    pub vintage: i64,
    /// Tonnes (serials) in the run.
    pub quantity: u64,
}

/// What a retirement is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retirement {
    /// On whose behalf (the buyer's company).
    pub beneficiary: String,
    /// The retirement reason registries print.
    pub reason: String,
    /// The claim it is used for.
    pub claim_use: String,
    /// The buyer's reporting year.
    pub reporting_year: i64,
}

/// One request to the registry or payment rail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Venue trade id.
    pub trade_id: u64,
    /// What is asked.
    pub kind: Kind,
    /// Buyer account at the venue (payment's payer, transfer's destination,
    /// retirement's holder).
    pub buyer: u64,
    /// Seller account at the venue (payment's payee, transfer's source).
    pub seller: u64,
    /// Tonnes.
    pub quantity: u64,
    /// The trade's cash leg, micro-dollars.
    pub amount_micros: i64,
    /// The serials delivered (transfer) or retired (retirement).
    pub serials: Vec<SerialRange>,
    /// Retirements only.
    pub retirement: Option<Retirement>,
}

impl Request {
    /// The same request is the same key: a registry that has seen it
    /// answers it once.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        format!("tonnex-{}-{}", self.trade_id, self.kind.as_str())
    }

    /// The request as the adapter contract sends it, with the accounts of
    /// `accounts`.
    pub fn to_json(&self, accounts: &RegistryAccounts) -> Result<Value, ContractError> {
        let (source, destination) = match self.kind {
            Kind::Payment => (
                accounts.payment(self.buyer)?,
                accounts.payment(self.seller)?,
            ),
            Kind::Transfer => (
                accounts.registry(self.seller)?,
                accounts.registry(self.buyer)?,
            ),
            Kind::Retirement => (accounts.registry(self.buyer)?, String::new()),
            // Out of the venue's custody account (account 0's) to the owner's.
            Kind::Withdrawal => (accounts.registry(0)?, accounts.registry(self.buyer)?),
        };
        Ok(json!({
            "idempotency_key": self.idempotency_key(),
            "trade_id": self.trade_id,
            "kind": self.kind.as_str(),
            "quantity": self.quantity,
            "amount_micros": self.amount_micros,
            "currency": "USD",
            "source_account": source,
            "destination_account": if destination.is_empty() { Value::Null } else { destination.into() },
            "serial_blocks": self.serials.iter().map(|s| json!({
                "registry": s.registry,
                "project_id": s.project_id,
                "serial_start": s.serial_start,
                "serial_end": s.serial_end,
                "vintage": s.vintage,
                "quantity": s.quantity,
            })).collect::<Vec<_>>(),
            "retirement": self.retirement.as_ref().map(|r| json!({
                "beneficiary": r.beneficiary,
                "reason": r.reason,
                "use": r.claim_use,
                "reporting_year": r.reporting_year,
            })),
        }))
    }
}

/// Why a request is not one a registry can act on.
fn field<'a>(value: &'a Value, name: &str) -> Result<&'a Value, String> {
    value
        .get(name)
        .ok_or_else(|| format!("request without '{name}'"))
}

fn text(value: &Value, name: &str) -> Result<String, String> {
    field(value, name)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("'{name}' is not a non-empty string"))
}

fn unsigned(value: &Value, name: &str) -> Result<u64, String> {
    field(value, name)?
        .as_u64()
        .ok_or_else(|| format!("'{name}' is not an unsigned integer"))
}

/// A request as a registry bridge reads it: every field the contract
/// requires for its kind, checked (the simulated registry refuses the
/// batch, naming the request and the field, otherwise).
pub fn parse_request(value: &Value) -> Result<(Request, String, Option<String>), ContractError> {
    let kind = Kind::parse(&text(value, "kind")?).ok_or("unknown 'kind'")?;
    let key = text(value, "idempotency_key")?;
    let source = text(value, "source_account")?;
    let destination = match kind {
        Kind::Retirement => None,
        _ => Some(text(value, "destination_account")?),
    };
    let mut serials = Vec::new();
    for block in field(value, "serial_blocks")?
        .as_array()
        .ok_or("'serial_blocks' is not an array")?
    {
        serials.push(SerialRange {
            registry: text(block, "registry")?,
            project_id: text(block, "project_id")?,
            serial_start: text(block, "serial_start")?,
            serial_end: text(block, "serial_end")?,
            vintage: field(block, "vintage")?
                .as_i64()
                .ok_or("'vintage' is not an integer")?,
            quantity: unsigned(block, "quantity")?,
        });
    }
    let retirement = match (kind, value.get("retirement")) {
        (Kind::Retirement, Some(r)) if r.is_object() => Some(Retirement {
            beneficiary: text(r, "beneficiary")?,
            reason: text(r, "reason")?,
            claim_use: text(r, "use")?,
            reporting_year: field(r, "reporting_year")?
                .as_i64()
                .ok_or("'reporting_year' is not an integer")?,
        }),
        (Kind::Retirement, _) => return Err("a retirement without 'retirement'".into()),
        _ => None,
    };
    let request = Request {
        trade_id: unsigned(value, "trade_id")?,
        kind,
        buyer: 0,
        seller: 0,
        quantity: unsigned(value, "quantity")?,
        amount_micros: field(value, "amount_micros")?
            .as_i64()
            .ok_or("'amount_micros' is not an integer")?,
        serials,
        retirement,
    };
    if key != request.idempotency_key() {
        return Err(ContractError(format!(
            "idempotency_key '{key}' is not {}",
            request.idempotency_key()
        )));
    }
    Ok((request, source, destination))
}

/// Each venue account's account at the registry and at the payment rail.
#[derive(Clone, Debug, Default)]
pub struct RegistryAccounts {
    accounts: HashMap<u64, (String, String)>,
    /// No file: the simulator's own naming (`SIM-REG-<id>`, `SIM-PAY-<id>`).
    simulated: bool,
}

impl RegistryAccounts {
    /// The simulated registry's accounts, named after the venue account.
    #[must_use]
    pub fn simulated() -> RegistryAccounts {
        RegistryAccounts {
            accounts: HashMap::new(),
            simulated: true,
        }
    }

    /// Reads a CSV file `account,registry_account,payment_account`, naming
    /// the file, line and field of anything wrong.
    pub fn load(path: &Path) -> Result<RegistryAccounts, AccountsFileError> {
        Self::read(path).map_err(AccountsFileError)
    }

    fn read(path: &Path) -> Result<RegistryAccounts, String> {
        let name = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == "account,registry_account,payment_account" => {}
            _ => {
                return Err(format!(
                    "{name}:1: the header must be account,registry_account,payment_account"
                ))
            }
        }
        let mut accounts = HashMap::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let at = i + 1;
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let [account, registry, payment] = cells[..] else {
                return Err(format!(
                    "{name}:{at}: 3 fields expected, found {}",
                    cells.len()
                ));
            };
            let account: u64 = account
                .parse()
                .map_err(|_| format!("{name}:{at}: account: '{account}' is not an account id"))?;
            for (field, value) in [("registry_account", registry), ("payment_account", payment)] {
                if value.is_empty() {
                    return Err(format!("{name}:{at}: {field}: empty"));
                }
            }
            if accounts
                .insert(account, (registry.to_string(), payment.to_string()))
                .is_some()
            {
                return Err(format!("{name}:{at}: account: {account} is listed twice"));
            }
        }
        Ok(RegistryAccounts {
            accounts,
            simulated: false,
        })
    }

    fn lookup(
        &self,
        account: u64,
        simulated: &str,
        pick: fn(&(String, String)) -> &String,
    ) -> Result<String, ContractError> {
        match self.accounts.get(&account) {
            Some(pair) => Ok(pick(pair).clone()),
            None if self.simulated => Ok(format!("{simulated}-{account}")),
            None => Err(ContractError(format!(
                "venue account {account} has no registry account configured (--registry-accounts)"
            ))),
        }
    }

    /// The venue account whose registry account is `registry_account`.
    #[must_use]
    pub fn venue_account_of(&self, registry_account: &str) -> Option<u64> {
        let listed = self
            .accounts
            .iter()
            .find(|(_, (r, _))| r == registry_account)
            .map(|(&a, _)| a);
        match listed {
            Some(a) => Some(a),
            None if self.simulated => registry_account.strip_prefix("SIM-REG-")?.parse().ok(),
            None => None,
        }
    }

    /// `account`'s account at the registry.
    pub fn registry(&self, account: u64) -> Result<String, ContractError> {
        self.lookup(account, "SIM-REG", |p| &p.0)
    }

    /// `account`'s account at the payment rail.
    pub fn payment(&self, account: u64) -> Result<String, ContractError> {
        self.lookup(account, "SIM-PAY", |p| &p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retirement() -> Request {
        Request {
            trade_id: 5 << 20,
            kind: Kind::Retirement,
            buyer: 1001,
            seller: 2001,
            quantity: 10,
            amount_micros: 250_000_000,
            serials: vec![SerialRange {
                registry: "Verra".into(),
                project_id: "VCS-2451".into(),
                serial_start: "VCS-2451-2023-000001".into(),
                serial_end: "VCS-2451-2023-000010".into(),
                vintage: 2023,
                quantity: 10,
            }],
            retirement: Some(Retirement {
                beneficiary: "Acme Manufacturing".into(),
                reason: "ongoing emissions responsibility".into(),
                claim_use:
                    "SBTi ongoing emissions responsibility, recognised pathway, reporting year 2026"
                        .into(),
                reporting_year: 2026,
            }),
        }
    }

    #[test]
    fn a_request_carries_what_a_registry_acts_on_and_reads_back() {
        let accounts = RegistryAccounts::simulated();
        let request = retirement();
        let json = request.to_json(&accounts).unwrap();
        assert_eq!(json["idempotency_key"], "tonnex-5242880-retirement");
        assert_eq!(json["source_account"], "SIM-REG-1001");
        assert_eq!(
            json["serial_blocks"][0]["serial_end"],
            "VCS-2451-2023-000010"
        );
        assert_eq!(json["retirement"]["beneficiary"], "Acme Manufacturing");
        let (back, source, destination) = parse_request(&json).unwrap();
        assert_eq!(
            (back.serials, back.retirement),
            (request.serials, request.retirement)
        );
        assert_eq!((source.as_str(), destination), ("SIM-REG-1001", None));
        let transfer = Request {
            kind: Kind::Transfer,
            retirement: None,
            ..retirement()
        };
        let json = transfer.to_json(&accounts).unwrap();
        assert_eq!(
            (&json["source_account"], &json["destination_account"]),
            (&"SIM-REG-2001".into(), &"SIM-REG-1001".into())
        );
    }

    #[test]
    fn an_incomplete_request_is_refused_naming_the_field() {
        let mut json = retirement()
            .to_json(&RegistryAccounts::simulated())
            .unwrap();
        json["retirement"]["beneficiary"] = "".into();
        assert!(parse_request(&json)
            .unwrap_err()
            .0
            .contains("'beneficiary'"));
        let mut json = retirement()
            .to_json(&RegistryAccounts::simulated())
            .unwrap();
        json["idempotency_key"] = "tonnex-1-retirement".into();
        assert!(parse_request(&json)
            .unwrap_err()
            .0
            .contains("idempotency_key"));
        json["serial_blocks"][0]
            .as_object_mut()
            .unwrap()
            .remove("vintage");
        assert!(parse_request(&json).unwrap_err().0.contains("'vintage'"));
    }

    #[test]
    fn configured_accounts_are_required_and_their_file_is_checked_by_line_and_field() {
        let dir = std::env::temp_dir().join(format!("tonnex-regacc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accounts.csv");
        std::fs::write(
            &path,
            "account,registry_account,payment_account\n1001,VERRA-ACME,IBAN-ACME\n",
        )
        .unwrap();
        let accounts = RegistryAccounts::load(&path).unwrap();
        assert_eq!(accounts.registry(1001).unwrap(), "VERRA-ACME");
        assert!(accounts.registry(2001).unwrap_err().0.contains("2001"));
        std::fs::write(
            &path,
            "account,registry_account,payment_account\n1001,VERRA-ACME,\n",
        )
        .unwrap();
        let e = RegistryAccounts::load(&path).unwrap_err().0;
        assert!(e.ends_with("accounts.csv:2: payment_account: empty"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod contract {
    use super::*;

    /// docs/registry-openapi.yaml names every field a request carries.
    #[test]
    fn the_openapi_document_names_every_field_a_request_carries() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/registry-openapi.yaml"
        ))
        .unwrap();
        let request = tests_support::request();
        let json = request.to_json(&RegistryAccounts::simulated()).unwrap();
        let mut names: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        names.extend(
            json["serial_blocks"][0]
                .as_object()
                .unwrap()
                .keys()
                .cloned(),
        );
        names.extend(json["retirement"].as_object().unwrap().keys().cloned());
        for name in names {
            assert!(
                doc.contains(&format!("        {name}:\n")),
                "docs/registry-openapi.yaml does not describe '{name}'"
            );
        }
        assert!(doc.contains("enum: [payment, transfer, retirement, withdrawal]"));
    }

    mod tests_support {
        use super::super::*;

        pub fn request() -> Request {
            Request {
                trade_id: 1 << 20,
                kind: Kind::Retirement,
                buyer: 1001,
                seller: 2001,
                quantity: 1,
                amount_micros: 1,
                serials: vec![SerialRange {
                    registry: "Verra".into(),
                    project_id: "VCS-1".into(),
                    serial_start: "VCS-1-1".into(),
                    serial_end: "VCS-1-1".into(),
                    vintage: 2024,
                    quantity: 1,
                }],
                retirement: Some(Retirement {
                    beneficiary: "Acme".into(),
                    reason: "r".into(),
                    claim_use: "u".into(),
                    reporting_year: 2026,
                }),
            }
        }
    }
}
