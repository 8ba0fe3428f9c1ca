//! ferrojit's aarch64 instruction encoder (being written).
