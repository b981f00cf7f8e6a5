//! The escrow state machine of one trade.
//!
//! ```text
//! locked ──submitted──▶ awaiting_confirmations ──both legs confirmed──▶ settled ──retired──▶ retired
//!                              │ a leg refused, or timed out               │
//!                              ▼                                           └─retirement refused──▶ retirement_refused
//!                            failed ──unwind──▶ unwound
//! ```
//!
//! `retirement_refused`: the registry refused to retire the buyer's credits
//! for good (serials already retired, account closed): the trade stays
//! delivered, the credits are the buyer's, and the venue is told.
//!
//! `locked`: the engine already holds the buyer's cash and the seller's
//! credits, and the ledger has moved both into escrow. `settled` is the
//! atomic swap: it happens in the one transaction that records the second
//! confirmation. The only way to change a trade's state is [`next`], which
//! refuses every transition the diagram does not draw.

use std::fmt;

/// Where a trade is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Both legs moved into escrow.
    Locked,
    /// Payment and registry transfer requested; waiting for both confirmations.
    AwaitingConfirmations,
    /// Both legs confirmed: credits with the buyer, cash with the seller.
    Settled,
    /// The buyer's credits were retired at the registry.
    Retired,
    /// A leg was refused or timed out; escrow still holds both legs.
    Failed,
    /// Both legs returned from escrow.
    Unwound,
    /// Delivered, but the registry refused the retirement for good.
    RetirementRefused,
}

impl State {
    /// The name stored in the ledger.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Locked => "locked",
            State::AwaitingConfirmations => "awaiting_confirmations",
            State::Settled => "settled",
            State::Retired => "retired",
            State::Failed => "failed",
            State::Unwound => "unwound",
            State::RetirementRefused => "retirement_refused",
        }
    }

    /// States whose legs are in escrow (the engine holds them pending).
    pub const IN_FLIGHT: [State; 3] = [State::Locked, State::AwaitingConfirmations, State::Failed];

    /// The state with stored name `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<State> {
        [
            State::Locked,
            State::AwaitingConfirmations,
            State::Settled,
            State::Retired,
            State::Failed,
            State::Unwound,
            State::RetirementRefused,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// `states` as an SQL list of their stored names (`'locked', 'failed'`):
/// queries name states through the enum, never as literals.
#[must_use]
pub fn sql_list(states: &[State]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Cash reached the seller (payment rail).
    Payment,
    /// Credits reached the buyer's registry account.
    Transfer,
}

/// What happened to a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Payment and transfer were requested.
    Submitted,
    /// One leg confirmed.
    Confirmed(Leg),
    /// One leg refused by the payment rail or the registry.
    Refused(Leg),
    /// No confirmation within the settlement timeout.
    TimedOut,
    /// Return both legs from escrow.
    Unwind,
    /// The registry retired the buyer's credits.
    RetirementConfirmed,
    /// The registry refused the retirement for good.
    RetirementRefused,
}

/// Confirmations seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Legs {
    /// Payment confirmed.
    pub payment: bool,
    /// Transfer confirmed.
    pub transfer: bool,
}

/// A transition the diagram does not draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Illegal {
    /// The state.
    pub state: State,
    /// The signal refused in it.
    pub signal: Signal,
}

impl fmt::Display for Illegal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not possible in state {}",
            self.signal,
            self.state.as_str()
        )
    }
}

impl std::error::Error for Illegal {}

/// The state and legs after `signal`, or why it cannot happen.
pub fn next(state: State, legs: Legs, signal: Signal) -> Result<(State, Legs), Illegal> {
    let illegal = Err(Illegal { state, signal });
    match (state, signal) {
        (State::Locked, Signal::Submitted) => Ok((State::AwaitingConfirmations, legs)),
        (State::AwaitingConfirmations, Signal::Confirmed(leg)) => {
            let already = match leg {
                Leg::Payment => legs.payment,
                Leg::Transfer => legs.transfer,
            };
            if already {
                return illegal;
            }
            let legs = match leg {
                Leg::Payment => Legs {
                    payment: true,
                    ..legs
                },
                Leg::Transfer => Legs {
                    transfer: true,
                    ..legs
                },
            };
            let state = if legs.payment && legs.transfer {
                State::Settled
            } else {
                State::AwaitingConfirmations
            };
            Ok((state, legs))
        }
        (State::AwaitingConfirmations, Signal::Refused(_) | Signal::TimedOut) => {
            Ok((State::Failed, legs))
        }
        (State::Failed, Signal::Unwind) => Ok((State::Unwound, legs)),
        (State::Settled, Signal::RetirementConfirmed) => Ok((State::Retired, legs)),
        (State::Settled, Signal::RetirementRefused) => Ok((State::RetirementRefused, legs)),
        _ => illegal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_STATES: [State; 7] = [
        State::Locked,
        State::AwaitingConfirmations,
        State::Settled,
        State::Retired,
        State::Failed,
        State::Unwound,
        State::RetirementRefused,
    ];
    const ALL_SIGNALS: [Signal; 9] = [
        Signal::Submitted,
        Signal::Confirmed(Leg::Payment),
        Signal::Confirmed(Leg::Transfer),
        Signal::Refused(Leg::Payment),
        Signal::Refused(Leg::Transfer),
        Signal::TimedOut,
        Signal::Unwind,
        Signal::RetirementConfirmed,
        Signal::RetirementRefused,
    ];

    fn run(signals: &[Signal]) -> Result<State, Illegal> {
        let (mut state, mut legs) = (State::Locked, Legs::default());
        for &signal in signals {
            (state, legs) = next(state, legs, signal)?;
        }
        Ok(state)
    }

    #[test]
    fn every_legal_path_ends_where_the_diagram_says() {
        use Leg::*;
        use Signal::*;
        assert_eq!(
            run(&[Submitted, Confirmed(Payment), Confirmed(Transfer)]),
            Ok(State::Settled)
        );
        assert_eq!(
            run(&[Submitted, Confirmed(Transfer), Confirmed(Payment)]),
            Ok(State::Settled)
        );
        assert_eq!(
            run(&[
                Submitted,
                Confirmed(Payment),
                Confirmed(Transfer),
                RetirementConfirmed
            ]),
            Ok(State::Retired)
        );
        assert_eq!(
            run(&[Submitted, Refused(Transfer), Unwind]),
            Ok(State::Unwound)
        );
        assert_eq!(
            run(&[Submitted, Confirmed(Payment), Refused(Transfer), Unwind]),
            Ok(State::Unwound)
        );
        assert_eq!(
            run(&[Submitted, Confirmed(Transfer), TimedOut, Unwind]),
            Ok(State::Unwound)
        );
        assert_eq!(run(&[Submitted, TimedOut, Unwind]), Ok(State::Unwound));
    }

    #[test]
    fn only_drawn_transitions_are_possible() {
        let drawn = |state: State, signal: Signal| {
            matches!(
                (state, signal),
                (State::Locked, Signal::Submitted)
                    | (State::AwaitingConfirmations, Signal::Confirmed(_))
                    | (State::AwaitingConfirmations, Signal::Refused(_))
                    | (State::AwaitingConfirmations, Signal::TimedOut)
                    | (State::Failed, Signal::Unwind)
                    | (State::Settled, Signal::RetirementConfirmed)
                    | (State::Settled, Signal::RetirementRefused)
            )
        };
        for state in ALL_STATES {
            for signal in ALL_SIGNALS {
                let result = next(state, Legs::default(), signal);
                assert_eq!(result.is_ok(), drawn(state, signal), "{state:?} {signal:?}");
            }
        }
    }

    #[test]
    fn a_leg_cannot_be_confirmed_twice_and_nothing_leaves_a_final_state() {
        let legs = Legs {
            payment: true,
            transfer: false,
        };
        assert!(next(
            State::AwaitingConfirmations,
            legs,
            Signal::Confirmed(Leg::Payment)
        )
        .is_err());
        for signal in ALL_SIGNALS {
            assert!(next(State::Retired, legs, signal).is_err());
            assert!(next(State::Unwound, legs, signal).is_err());
            assert!(next(State::RetirementRefused, legs, signal).is_err());
        }
        assert!(next(State::Settled, legs, Signal::Unwind).is_err());
    }

    #[test]
    fn state_names_round_trip() {
        for state in ALL_STATES {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
    }
}
