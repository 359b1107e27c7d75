//! The limits auth keeps (OWASP's advice on mail and guesses), counted by
//! the one fixed-window limiter, `shared::records::limit_window`.

use std::time::Duration;

use shared::records::limit_window::Limit;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);

/// Verification mail (sign-up, resend, the "already registered" notice).
pub const VERIFY_MAIL: [Limit; 2] = [
    Limit { name: "verify-minute", max: 1, window: MINUTE },
    Limit { name: "verify-hour", max: 5, window: HOUR },
];
/// Password-reset mail.
pub const RESET_MAIL: [Limit; 2] = [
    Limit { name: "reset-minute", max: 1, window: MINUTE },
    Limit { name: "reset-hour", max: 5, window: HOUR },
];
/// Sign-in codes (the second step, or signing in by mail): no minute
/// limit, so a mistyped second step can be started again at once.
pub const SIGNIN_MAIL: [Limit; 1] = [Limit { name: "signin-hour", max: 10, window: HOUR }];
/// Password guesses per account from everyone (OWASP ASVS 2.2.1: at most
/// 100 failed attempts an hour).
pub const GUESSES_PER_ACCOUNT: Limit = Limit { name: "guesses", max: 100, window: HOUR };
/// Password guesses per account from one client: a stranger's guesses stop
/// well before they shut the account's password door for everyone.
pub const GUESSES_PER_CLIENT: Limit = Limit { name: "guesses-client", max: 20, window: HOUR };
