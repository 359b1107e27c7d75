//! Time as a port: stores filter expired items against `Clock::now`, so tests
//! can move time instead of sleeping.

use jiff::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<Timestamp>);

#[cfg(any(test, feature = "test-support"))]
impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(std::sync::Mutex::new(start))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let by = jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX);
        *now = now.saturating_add(by).unwrap_or(Timestamp::MAX);
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
