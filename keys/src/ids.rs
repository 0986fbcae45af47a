//! Key ids in the two formats the Privacy Sandbox coordinators publish.

use serde::{Deserialize, Serialize};

/// How a use case names its keys (DESIGN §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyIdFormat {
    /// A random UUID: what the Google coordinator uses.
    #[default]
    #[serde(rename = "uuid")]
    Uuid,
    /// A bit-reversed counter ([`sequence_key_id`]): Bidding & Auction takes the first two hex
    /// characters as the 1-byte OHTTP key id, and bit reversal makes consecutive keys differ
    /// there.
    #[serde(rename = "sequence")]
    Sequence,
}

/// A fresh random (v4) UUID, lower-case and hyphenated.
pub fn uuid_key_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// The key id of the `counter`-th key of a `sequence` use case: the counter's 64 bits in
/// reverse order, as 16 upper-case hex characters (1 → `8000000000000000`).
///
/// Reversal puts the fastest-changing bit first, so the leading byte (B&A's OHTTP key id)
/// differs between recent keys.
pub fn sequence_key_id(counter: u64) -> String {
    format!("{:016X}", counter.reverse_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_ids_are_bit_reversed_upper_case_hex() {
        assert_eq!(sequence_key_id(0), "0000000000000000");
        assert_eq!(sequence_key_id(1), "8000000000000000");
        assert_eq!(sequence_key_id(2), "4000000000000000");
        assert_eq!(sequence_key_id(3), "C000000000000000");
        assert_eq!(sequence_key_id(0xFF), "FF00000000000000");
        assert_eq!(sequence_key_id(1 << 63), "0000000000000001");
        assert_eq!(sequence_key_id(u64::MAX), "FFFFFFFFFFFFFFFF");
    }

    #[test]
    fn uuid_ids_are_lower_case_hyphenated_v4_and_fresh() {
        let id = uuid_key_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_lowercase());
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(id, uuid_key_id());
    }

    #[test]
    fn formats_use_their_config_names() {
        assert_eq!(
            serde_json::to_string(&KeyIdFormat::Sequence)
                .ok()
                .as_deref(),
            Some("\"sequence\"")
        );
        assert_eq!(
            serde_json::from_str::<KeyIdFormat>("\"uuid\"").ok(),
            Some(KeyIdFormat::Uuid)
        );
        assert_eq!(KeyIdFormat::default(), KeyIdFormat::Uuid);
    }
}
