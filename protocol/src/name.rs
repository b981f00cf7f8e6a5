//! [`Name`]: a string field the venue fills from its own fixed names
//! without allocating, and a decoder fills with an owned copy. On the wire
//! it is exactly a `String` (docs/protocol.md, "String").

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use bincode::de::{BorrowDecoder, Decoder};
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use bincode::{BorrowDecode, Decode, Encode};

/// A name: borrowed from a `'static` one (an interned sub-ledger), or
/// owned (decoded, or made at run time).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub Cow<'static, str>);

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for Name {
    fn from(name: &'static str) -> Name {
        Name(Cow::Borrowed(name))
    }
}

impl From<String> for Name {
    fn from(name: String) -> Name {
        Name(Cow::Owned(name))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl Encode for Name {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.0.as_ref().encode(encoder)
    }
}

impl<Context> Decode<Context> for Name {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Name, DecodeError> {
        String::decode(decoder).map(Name::from)
    }
}

impl<'de, Context> BorrowDecode<'de, Context> for Name {
    fn borrow_decode<D: BorrowDecoder<'de, Context = Context>>(
        decoder: &mut D,
    ) -> Result<Name, DecodeError> {
        String::decode(decoder).map(Name::from)
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    fn config() -> bincode::config::Configuration {
        bincode::config::standard()
    }

    #[test]
    fn encodes_as_a_string_either_way() {
        let text = String::from("ccp-removals");
        let as_string = bincode::encode_to_vec(&text, config()).expect("encodes");
        for name in [Name::from("ccp-removals"), Name::from(text.clone())] {
            let bytes = bincode::encode_to_vec(&name, config()).expect("encodes");
            assert_eq!(bytes, as_string);
            let (back, used): (Name, usize) =
                bincode::decode_from_slice(&bytes, config()).expect("decodes");
            assert_eq!((back, used), (name, bytes.len()));
        }
    }
}
