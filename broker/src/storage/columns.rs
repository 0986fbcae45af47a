//! Column types for `#[derive(sqlx::FromRow)]` over the `Any` driver, which
//! knows only what every engine stores alike: JSON documents live in TEXT
//! columns and booleans in INTEGER columns (0/1), so neither decodes as
//! `sqlx::types::Json` or `bool`. A record names these as the column's
//! type, `#[sqlx(try_from = "JsonText<Vec<String>>")]`, and keeps its own
//! field type.

use serde::de::DeserializeOwned;
use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{Any, Decode, Type};

/// A JSON document stored as text.
pub(super) struct JsonText<T>(T);

impl<T> Type<Any> for JsonText<T> {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'r, T: DeserializeOwned> Decode<'r, Any> for JsonText<T> {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Any>>::decode(value)?;
        Ok(JsonText(serde_json::from_str(text)?))
    }
}

// `From<JsonText<T>> for T` cannot be written for every `T` (the orphan
// rule), so for each type stored as JSON.
impl From<JsonText<Vec<String>>> for Vec<String> {
    fn from(column: JsonText<Vec<String>>) -> Self {
        column.0
    }
}

impl From<JsonText<serde_json::Value>> for serde_json::Value {
    fn from(column: JsonText<serde_json::Value>) -> Self {
        column.0
    }
}

/// A boolean stored as 0 or 1.
pub(super) struct IntBool(bool);

impl Type<Any> for IntBool {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for IntBool {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        match <i64 as Decode<'r, Any>>::decode(value)? {
            0 => Ok(IntBool(false)),
            1 => Ok(IntBool(true)),
            other => Err(format!("{other} is not a stored boolean (0 or 1)").into()),
        }
    }
}

impl From<IntBool> for bool {
    fn from(column: IntBool) -> Self {
        column.0
    }
}
