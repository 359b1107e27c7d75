//! The records layer: each kind of item the table holds, as a typed record
//! with its key, encoding and decoding in one place. Callers speak records;
//! only this layer (and the key scheme in `model::keys`) knows partition
//! and sort keys.

pub mod cluster_status;
