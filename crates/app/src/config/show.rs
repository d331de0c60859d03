//! The settings as [`SettingValue`]s, section by section: a serde
//! `Serializer` that keeps the order of the fields and accepts only the
//! shapes a setting has (text, a number, a flag, a list of text, unset).

use std::fmt;

use serde::ser::{self, Impossible, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{SettingValue, Settings};

/// Every section of `settings` with its settings, in order.
pub(super) fn sections(
    settings: &Settings,
) -> Vec<(&'static str, Vec<(&'static str, SettingValue)>)> {
    // Cannot fail: every setting shows as one of the shapes above, and the
    // tests print every one.
    let Ok(Shown::Table(sections)) = settings.serialize(Show) else {
        return Vec::new();
    };
    sections
        .into_iter()
        .map(|(name, section)| (name, section.settings()))
        .collect()
}

/// A struct (the settings, a section) or one setting's value.
enum Shown {
    Table(Vec<(&'static str, Shown)>),
    Value(SettingValue),
}

impl Shown {
    /// The settings of a section, in order.
    fn settings(self) -> Vec<(&'static str, SettingValue)> {
        let Shown::Table(fields) = self else {
            return Vec::new();
        };
        fields
            .into_iter()
            .filter_map(|(key, value)| match value {
                Shown::Value(value) => Some((key, value)),
                Shown::Table(_) => None,
            })
            .collect()
    }
}

/// Serializes settings into [`Shown`], keeping the order of their fields;
/// any shape a setting cannot have is an error.
struct Show;

struct ShowList(Vec<String>);

struct ShowTable(Vec<(&'static str, Shown)>);

fn text(value: impl fmt::Display) -> Result<Shown, fmt::Error> {
    Ok(Shown::Value(SettingValue::Text(value.to_string())))
}

fn number(value: impl TryInto<u64>) -> Result<Shown, fmt::Error> {
    let value = value.try_into().map_err(|_| fmt::Error)?;
    Ok(Shown::Value(SettingValue::Number(value)))
}

impl Serializer for Show {
    type Ok = Shown;
    type Error = fmt::Error;
    type SerializeSeq = ShowList;
    type SerializeStruct = ShowTable;
    type SerializeTuple = Impossible<Shown, fmt::Error>;
    type SerializeTupleStruct = Impossible<Shown, fmt::Error>;
    type SerializeTupleVariant = Impossible<Shown, fmt::Error>;
    type SerializeMap = Impossible<Shown, fmt::Error>;
    type SerializeStructVariant = Impossible<Shown, fmt::Error>;

    fn serialize_bool(self, value: bool) -> Result<Shown, fmt::Error> {
        Ok(Shown::Value(SettingValue::Bool(value)))
    }
    fn serialize_i8(self, value: i8) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_i16(self, value: i16) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_i32(self, value: i32) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_i64(self, value: i64) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_u8(self, value: u8) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_u16(self, value: u16) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_u32(self, value: u32) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_u64(self, value: u64) -> Result<Shown, fmt::Error> {
        number(value)
    }
    fn serialize_f32(self, _: f32) -> Result<Shown, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_f64(self, _: f64) -> Result<Shown, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_char(self, value: char) -> Result<Shown, fmt::Error> {
        text(value)
    }
    fn serialize_str(self, value: &str) -> Result<Shown, fmt::Error> {
        text(value)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Shown, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_none(self) -> Result<Shown, fmt::Error> {
        Ok(Shown::Value(SettingValue::Unset))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Shown, fmt::Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Shown, fmt::Error> {
        Ok(Shown::Value(SettingValue::Unset))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Shown, fmt::Error> {
        Ok(Shown::Value(SettingValue::Unset))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Shown, fmt::Error> {
        text(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Shown, fmt::Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Shown, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ShowList, fmt::Error> {
        Ok(ShowList(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, fmt::Error> {
        Err(fmt::Error)
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<ShowTable, fmt::Error> {
        Ok(ShowTable(Vec::with_capacity(len)))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, fmt::Error> {
        Err(fmt::Error)
    }
}

impl SerializeSeq for ShowList {
    type Ok = Shown;
    type Error = fmt::Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), fmt::Error> {
        match value.serialize(Show)? {
            Shown::Value(SettingValue::Text(item)) => {
                self.0.push(item);
                Ok(())
            }
            _ => Err(fmt::Error),
        }
    }

    fn end(self) -> Result<Shown, fmt::Error> {
        Ok(Shown::Value(SettingValue::List(self.0)))
    }
}

impl ser::SerializeStruct for ShowTable {
    type Ok = Shown;
    type Error = fmt::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), fmt::Error> {
        self.0.push((key, value.serialize(Show)?));
        Ok(())
    }

    fn end(self) -> Result<Shown, fmt::Error> {
        Ok(Shown::Table(self.0))
    }
}
