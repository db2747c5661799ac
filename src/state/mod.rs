//! Canister state: memories, globals and their persistence.
