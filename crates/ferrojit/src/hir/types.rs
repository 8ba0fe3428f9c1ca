//! The HIR type lattice: a set of bits, one per kind of value. Union is `|`, meet is `&`;
//! `OBJECT` is any Python object, `OPT_OBJECT` adds NULL, the `C*` kinds are machine values.

use std::fmt;

/// A set of possible kinds of value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Type(pub u32);

macro_rules! bits {
    ($($name:ident = $bit:expr, $text:expr;)*) => {
        impl Type {
            $(#[doc = $text] pub const $name: Type = Type(1 << $bit);)*
            const NAMES: &'static [(Type, &'static str)] = &[$((Type::$name, stringify!($name)),)*];
        }
    };
}

bits! {
    NULL = 0, "The NULL pointer.";
    NONE_TYPE = 1, "`None`.";
    BOOL = 2, "Exactly `bool`.";
    INT = 3, "Exactly `int`.";
    FLOAT = 4, "Exactly `float`.";
    STR = 5, "Exactly `str`.";
    TUPLE = 6, "Exactly `tuple`.";
    LIST = 7, "Exactly `list`.";
    DICT = 8, "Exactly `dict`.";
    FUNC = 9, "A Python function.";
    TYPE_OBJ = 10, "A type object.";
    OTHER = 11, "Any other object.";
    CBOOL = 12, "A machine bool (0 or 1).";
    CINT = 13, "A machine integer.";
    CPTR = 14, "A machine pointer that is not an object.";
}

impl Type {
    /// No value (instructions that define nothing useful).
    pub const VOID: Type = Type(0);
    /// Any Python object.
    pub const OBJECT: Type = Type((1 << 12) - 2);
    /// Any Python object or NULL.
    pub const OPT_OBJECT: Type = Type((1 << 12) - 1);

    pub fn is_subtype_of(self, other: Type) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn meet(self, other: Type) -> Type {
        Type(self.0 & other.0)
    }

    pub fn union(self, other: Type) -> Type {
        Type(self.0 | other.0)
    }

    /// Whether values of this type are owned Python references when they sit on the stack.
    pub fn is_object(self) -> bool {
        self.0 != 0 && self.is_subtype_of(Type::OPT_OBJECT)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Type::VOID => return write!(f, "Void"),
            Type::OBJECT => return write!(f, "Object"),
            Type::OPT_OBJECT => return write!(f, "OptObject"),
            _ => {}
        }
        let names: Vec<String> = Type::NAMES
            .iter()
            .filter(|(t, _)| t.0 & self.0 != 0)
            .map(|(_, n)| camel(n))
            .collect();
        write!(f, "{}", names.join("|"))
    }
}

/// `NONE_TYPE` -> `NoneType`.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| w[..1].to_string() + &w[1..].to_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattice_operations() {
        assert!(Type::INT.is_subtype_of(Type::OBJECT));
        assert!(!Type::NULL.is_subtype_of(Type::OBJECT));
        assert!(Type::OBJECT.is_subtype_of(Type::OPT_OBJECT));
        assert_eq!(Type::INT.union(Type::FLOAT).to_string(), "Int|Float");
        assert_eq!(Type::OBJECT.meet(Type::INT), Type::INT);
        assert_eq!(Type::NONE_TYPE.to_string(), "NoneType");
        assert!(!Type::CBOOL.is_object());
    }
}
