//! Serializable values: globals and hex-encoded byte lists.

use serde::{Deserialize, Serialize};

/// The value of a mutable global, bit-exact (floats as their bit patterns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlobalValue {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, as bits.
    F32(u32),
    /// An `f64`, as bits.
    F64(u64),
    /// A `v128`, as a little-endian integer.
    V128(u128),
    /// A null reference (`funcref` or `externref`); non-null references cannot be persisted.
    NullFuncRef,
    /// A null `externref`.
    NullExternRef,
}

/// Serde helper: a list of byte strings as a list of hex strings.
pub(super) mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for item in list {
            seq.serialize_element(&hex::encode(item))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let strings = Vec::<String>::deserialize(d)?;
        strings
            .iter()
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Serde for `Option<Vec<u8>>` as a hex string.
pub(crate) mod hex_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid hex: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_values_round_trip_through_json() {
        let values = vec![
            GlobalValue::I32(-1),
            GlobalValue::I64(i64::MIN),
            GlobalValue::F32(0x7fc0_0001),
            GlobalValue::F64(u64::MAX),
            GlobalValue::V128(u128::MAX - 5),
            GlobalValue::NullFuncRef,
        ];
        let json = serde_json::to_string(&values).unwrap();
        let back: Vec<GlobalValue> = serde_json::from_str(&json).unwrap();
        assert_eq!(values, back);
    }
}
