//! ferrojit
