//! ferrojit's x86-64 instruction encoder (being written).
