//! `tonnex-web`: the buyer compliance dashboard, public certificate
//! verification and the operator console (docs/web.md). One axum process
//! reading the settlement ledger read-only and talking to the venue through
//! its signed admin port and its metrics.

pub mod app;
pub mod auth;
pub mod budget_view;
pub mod buyer;
pub mod inventory_page;
pub mod ledger;
pub mod metrics;
pub mod operator;
pub mod page;
pub mod summary;
pub mod svg;
pub mod venue;
pub mod verify;
pub mod verify_page;
