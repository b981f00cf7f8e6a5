//! Member accounts added at runtime through the admin port. The account
//! starts `pending_kyc` (a `kyc ID active` lets it trade); its secret is
//! hashed with argon2 at once and only the hash is journaled and kept, so
//! every start lists the account again and its logins verify against it.

use argon2::password_hash::{PasswordHasher, SaltString};
use tonnex_engine::{AccountListing, Command, VenueCommand};
use tonnex_protocol::RejectReason;

use super::admin_lots::Planned;
use super::server::{Account, Gateway, Risk};
use super::session::Credential;
use crate::config::{AccountConfig, AccountStatus, Role};

/// The argon2 hash (PHC string) of `secret`, with a fresh random salt
/// (16 bytes from the kernel's generator).
#[must_use]
pub fn hash_secret(secret: &str) -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("the kernel's random generator");
    let salt = SaltString::encode_b64(&bytes).expect("16 bytes make a valid salt");
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 hashes any secret with a generated salt")
        .to_string()
}

/// The role a listing names.
pub fn listed_role(role: &str) -> Result<Role, String> {
    match role {
        "seller" => Ok(Role::Seller),
        "market_maker" => Ok(Role::MarketMaker),
        other => Err(format!(
            "'{other}' is not seller or market_maker (buyers need a profile in the venue's files)"
        )),
    }
}

/// The venue-file form of an account added at runtime (no secret: its
/// credential is the listing's hash).
#[must_use]
pub fn listed_account(listing: &AccountListing, role: Role) -> AccountConfig {
    AccountConfig {
        id: listing.account,
        name: listing.name.clone(),
        role,
        status: AccountStatus::PendingKyc,
        secret: String::new(),
        cash_usd: rust_decimal::Decimal::ZERO,
        max_order_qty: None,
        max_notional_usd: None,
        price_collar_pct: None,
    }
}

impl Gateway {
    /// Adds account `account`: checked, hashed, known to the gateway and
    /// the pre-router at once (`pending_kyc`), and journaled.
    pub(super) fn add_account(
        &mut self,
        account: u64,
        name: String,
        role: &str,
        secret: &str,
    ) -> Result<(Planned, String), (RejectReason, String)> {
        let invalid = |text: String| (RejectReason::InvalidRequest, text);
        if account == 0 || self.accounts.contains_key(&account) {
            return Err(invalid(format!("account {account} is 0 or already exists")));
        }
        let role_code = listed_role(role).map_err(invalid)?;
        if secret.len() < 8 {
            return Err(invalid("the secret must be at least 8 bytes".into()));
        }
        let listing = AccountListing {
            account,
            name,
            role: role.to_string(),
            secret_hash: hash_secret(secret),
        };
        self.admit_account(&listing, role_code);
        let mut venue = (*self.admin.config).clone();
        venue.accounts.push(listed_account(&listing, role_code));
        self.admin.config = std::sync::Arc::new(venue);
        let text = format!("account {account} added, pending_kyc");
        Ok((
            vec![(
                Command::Venue(Box::new(VenueCommand::AccountAdded(listing))),
                None,
            )],
            text,
        ))
    }

    /// Makes a listed account known to the sessions and the pre-router.
    pub(super) fn admit_account(&mut self, listing: &AccountListing, role: Role) {
        self.accounts.insert(
            listing.account,
            Account {
                credential: Credential::Hash(listing.secret_hash.clone()),
                role,
                risk: Risk::default(),
                conn: None,
                last_client_order_id: 0,
            },
        );
        self.desk
            .router
            .add_account(listing.account, role, AccountStatus::PendingKyc);
    }
}
