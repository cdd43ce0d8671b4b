//! Type fingerprints for registered tasks: the shape of a serde type as serde sees it, hashed.
//!
//! The parent and a worker may disagree on a task's input or output type (two builds, or two
//! declarations of one name). postcard is not self-describing, so `u64` read as `i64`, or a
//! struct read with its fields in another order, decodes "successfully" into a wrong value. Each
//! request therefore carries the fingerprints of the types the parent uses, and the worker
//! compares them with its own before decoding anything: a disagreement is a typed error, always.
//!
//! The fingerprint is computed by driving the type's `Deserialize` impl with a tracing
//! deserializer that records every request it makes: primitive kinds, struct and field names in
//! declaration order, enum and variant names, the shape of sequence and map elements, options.
//! Same shape, same fingerprint; a different kind, name, order or arity, a different one.

use std::fmt::{self, Write};
use std::hash::{Hash, Hasher};

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

/// The fingerprint of `T`'s serde shape.
pub(crate) fn of<T: DeserializeOwned>() -> u64 {
    let mut tracer = Tracer { shape: String::new(), depth: 0 };
    // Tracing stops at the first value a type refuses (say a `NonZeroU64` given 0): the shape up
    // to there is recorded either way, identically on both sides.
    let _ = T::deserialize(&mut tracer);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tracer.shape.hash(&mut hasher);
    hasher.finish()
}

/// How deep the trace follows nested types (recursive types end here).
const MAX_DEPTH: usize = 24;

struct Tracer {
    shape: String,
    depth: usize,
}

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("trace stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl Tracer {
    fn note(&mut self, what: &str) {
        self.shape.push_str(what);
        self.shape.push(';');
    }

    fn nested<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R, Stop>) -> Result<R, Stop> {
        if self.depth >= MAX_DEPTH {
            self.note("...");
            return Err(Stop);
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
}

macro_rules! primitive {
    ($($method:ident => $visit:ident($value:expr)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            self.note(stringify!($method));
            visitor.$visit($value)
        })*
    };
}

impl<'de> de::Deserializer<'de> for &mut Tracer {
    type Error = Stop;

    primitive! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_i128 => visit_i128(0),
        deserialize_u8 => visit_u8(0),
        deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0),
        deserialize_u64 => visit_u64(0),
        deserialize_u128 => visit_u128(0),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_string(String::new()),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_byte_buf(Vec::new()),
        deserialize_identifier => visit_str(""),
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("unit");
        visitor.visit_unit()
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        self.note("any");
        Err(Stop)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("ignored");
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("option");
        self.nested(|t| visitor.visit_some(t))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Stop> {
        self.note(&format!("unit_struct {name}"));
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Stop> {
        self.note(&format!("newtype {name}"));
        self.nested(|t| visitor.visit_newtype_struct(t))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("seq");
        self.nested(|t| visitor.visit_seq(Elements { tracer: t, left: 1 }))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        self.note(&format!("tuple {len}"));
        self.nested(|t| visitor.visit_seq(Elements { tracer: t, left: len }))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.note(&format!("tuple_struct {name} {len}"));
        self.nested(|t| visitor.visit_seq(Elements { tracer: t, left: len }))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("map");
        self.nested(|t| visitor.visit_map(Entries { tracer: t, left: 1 }))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let mut note = format!("struct {name}");
        fields.iter().for_each(|f| {
            let _ = write!(note, " {f}");
        });
        self.note(&note);
        self.nested(|t| visitor.visit_seq(Elements { tracer: t, left: fields.len() }))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let mut note = format!("enum {name}");
        variants.iter().for_each(|v| {
            let _ = write!(note, " {v}");
        });
        self.note(&note);
        // The payload of the first variant is traced (the others' names are in the note).
        self.nested(|t| visitor.visit_enum(Variant { tracer: t }))
    }
}

/// Yields `left` traced elements (one for a sequence: its element shape).
struct Elements<'a> {
    tracer: &'a mut Tracer,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.tracer).map(Some)
    }
}

/// Yields `left` traced key-value pairs (one for a map: its key and value shapes).
struct Entries<'a> {
    tracer: &'a mut Tracer,
    left: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.tracer).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        seed.deserialize(&mut *self.tracer)
    }
}

/// Picks the first variant and traces its payload.
struct Variant<'a> {
    tracer: &'a mut Tracer,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = Stop;
    type Variant = Variant<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Stop> {
        let value = seed.deserialize(de::value::U32Deserializer::<Stop>::new(0))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        self.tracer.note("unit_variant");
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Stop> {
        self.tracer.note("newtype_variant");
        seed.deserialize(self.tracer)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        self.tracer.note(&format!("tuple_variant {len}"));
        visitor.visit_seq(Elements { tracer: self.tracer, left: len })
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Stop> {
        let mut note = "struct_variant".to_owned();
        fields.iter().for_each(|f| {
            let _ = write!(note, " {f}");
        });
        self.tracer.note(&note);
        visitor.visit_seq(Elements { tracer: self.tracer, left: fields.len() })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::of;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Pair {
        a: u32,
        b: u64,
    }

    mod reordered {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Pair {
            pub b: u64,
            pub a: u32,
        }
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Circle { r: f64 },
        Square(f64),
        Dot,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
    }

    #[test]
    fn same_size_different_meaning_types_differ() {
        assert_ne!(of::<u64>(), of::<i64>());
        assert_ne!(of::<(u32, u32)>(), of::<u64>());
        assert_ne!(of::<(u64, u64)>(), of::<(i64, i64)>());
        assert_ne!(of::<Pair>(), of::<reordered::Pair>(), "field order is part of the shape");
        assert_ne!(of::<Vec<u8>>(), of::<Vec<i8>>());
        assert_ne!(of::<Option<u64>>(), of::<u64>());
        assert_ne!(of::<f64>(), of::<u64>());
    }

    #[test]
    fn the_same_type_always_has_the_same_fingerprint() {
        assert_eq!(of::<Pair>(), of::<Pair>());
        assert_eq!(of::<Shape>(), of::<Shape>());
        assert_eq!(
            of::<std::collections::HashMap<String, Vec<u64>>>(),
            of::<std::collections::HashMap<String, Vec<u64>>>()
        );
        assert_eq!(of::<Result<(), String>>(), of::<Result<(), String>>());
        // Recursive types end at the depth limit instead of looping.
        assert_eq!(of::<Tree>(), of::<Tree>());
    }
}
