//! Time as the broker stores and compares it: Unix milliseconds (DESIGN §4:
//! key times are epoch ms). The lowest layer: it names no other module, so
//! everything may use it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` in Unix ms; 0 before the epoch, `i64::MAX` beyond what fits.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The instant `ms` Unix ms name; negative values are the epoch.
pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_round_trips_and_clamps_at_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_669_252_790_485);
        assert_eq!(unix_ms(t), 1_669_252_790_485);
        assert_eq!(from_unix_ms(unix_ms(t)), t);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(from_unix_ms(-5), UNIX_EPOCH);
    }
}
